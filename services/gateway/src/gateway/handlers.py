"""The gateway consumes no events: it forwards requests and serves pages."""

from __future__ import annotations

from shared.servicekit.consumer import Subscriptions

SUBSCRIPTIONS: Subscriptions = {}
