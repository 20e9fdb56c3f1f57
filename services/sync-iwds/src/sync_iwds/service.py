"""sync-iwds's use cases: `async def x(conn, deps, ...)` in the caller's transaction."""

from __future__ import annotations
