"""Events the notify service consumes: event type -> handler.

The consumer subscribes to exactly these types' topics.
"""

from __future__ import annotations

from shared.servicekit.consumer import Subscriptions

SUBSCRIPTIONS: Subscriptions = {}
