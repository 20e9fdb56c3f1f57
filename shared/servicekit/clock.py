"""One clock for the whole system.

Instants are aware datetimes in UTC; business dates (date-of-birth limits,
enrollment and MSR dates, expiry dates shown to people, the IWDS nightly
cut-off) are taken in the portal's time zone, one setting for every service
(``CSC_PORTAL_TIMEZONE``, default America/Chicago). Use cases get the clock
from their service's deps, so tests pin it (:class:`FixedClock`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

DEFAULT_PORTAL_TIMEZONE = "America/Chicago"


class Clock(Protocol):
    zone: ZoneInfo

    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...

    def today(self) -> date:
        """The current business date in the portal's time zone."""
        ...


def business_date(instant: datetime, zone: ZoneInfo) -> date:
    """The portal's calendar date at ``instant`` (an aware datetime)."""
    if instant.tzinfo is None:
        raise ValueError("a naive datetime has no business date")
    return instant.astimezone(zone).date()


def local_time(instant: datetime, zone: ZoneInfo) -> datetime:
    """``instant`` on the portal's wall clock (for what people read)."""
    return instant.astimezone(zone)


class SystemClock:
    def __init__(self, zone: ZoneInfo | str = DEFAULT_PORTAL_TIMEZONE) -> None:
        self.zone = ZoneInfo(zone) if isinstance(zone, str) else zone

    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        return business_date(self.now(), self.zone)


class FixedClock:
    """A clock tests set and move by hand."""

    def __init__(
        self, instant: datetime, zone: ZoneInfo | str = DEFAULT_PORTAL_TIMEZONE
    ) -> None:
        self.zone = ZoneInfo(zone) if isinstance(zone, str) else zone
        self.set(instant)

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("a FixedClock needs an aware datetime")
        self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def now(self) -> datetime:
        return self._now

    def today(self) -> date:
        return business_date(self._now, self.zone)
