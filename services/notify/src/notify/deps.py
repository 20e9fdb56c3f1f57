"""What notify's use cases and its delivery worker need, built once from settings."""

from __future__ import annotations

from dataclasses import dataclass

from notify.mail import Renderer, SmtpPool
from notify.settings import NotifySettings
from shared.servicekit.access import GroupsAccess
from shared.servicekit.clock import Clock, SystemClock
from shared.servicekit.outbox import Outbox


@dataclass(frozen=True)
class Deps:
    clock: Clock
    outbox: Outbox
    settings: NotifySettings
    renderer: Renderer
    smtp: SmtpPool
    # asks groups whether a staff member reaches a message's group (CSC_GROUPS_URL)
    groups: GroupsAccess

    @classmethod
    def from_settings(cls, s: NotifySettings, clock: Clock | None = None) -> Deps:
        return cls(
            clock=clock or SystemClock(s.zone), outbox=Outbox(producer="notify"),
            settings=s, renderer=Renderer(s), smtp=SmtpPool(s),
            groups=GroupsAccess.from_env(),
        )

    async def aclose(self) -> None:
        await self.smtp.close()
        await self.groups.aclose()
