"""sync-iwds's rules as plain code (no I/O; errors from shared.servicekit.errors)."""

from __future__ import annotations
