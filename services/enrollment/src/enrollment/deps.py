"""What enrollment's use cases get, built once at start-up from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from enrollment.repository.identity import IdentityClient
from enrollment.settings import EnrollmentSettings
from shared.servicekit.clock import Clock, SystemClock
from shared.servicekit.outbox import Outbox


@dataclass(frozen=True)
class Deps:
    clock: Clock
    outbox: Outbox
    identity: IdentityClient
    signin_url: str
    offender_search_url: str

    @classmethod
    def from_settings(cls, s: EnrollmentSettings, identity: IdentityClient) -> Deps:
        return cls(SystemClock(s.business_zone), Outbox(producer="enrollment"), identity,
                   s.signin_url, s.offender_search_url)
