"""What the groups use cases get, built once at start-up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from groups.settings import GroupsSettings
from shared.servicekit.clock import Clock, SystemClock
from shared.servicekit.outbox import Outbox


@dataclass(frozen=True)
class Deps:
    clock: Clock
    outbox: Outbox
    settings: GroupsSettings
    # set when a message's recipients were fixed: the message task wakes at once
    messages_waiting: asyncio.Event = field(default_factory=asyncio.Event, compare=False)

    @classmethod
    def from_settings(cls, settings: GroupsSettings, clock: Clock | None = None) -> Deps:
        return cls(clock or SystemClock(settings.zone), Outbox(producer="groups"), settings)
