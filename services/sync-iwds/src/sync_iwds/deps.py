"""What sync-iwds' use cases need, built once from settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from shared.servicekit.clock import Clock, SystemClock
from shared.servicekit.outbox import Outbox
from sync_iwds.settings import SyncIwdsSettings


@dataclass(frozen=True)
class Deps:
    clock: Clock
    outbox: Outbox
    settings: SyncIwdsSettings
    # set when a run is staged: the service's applier picks it up
    wake_applier: asyncio.Event = field(default_factory=asyncio.Event)


async def build_deps(settings: SyncIwdsSettings, pool: asyncpg.Pool | None = None) -> Deps:
    return Deps(clock=SystemClock(settings.zone), outbox=Outbox("sync-iwds"), settings=settings)
