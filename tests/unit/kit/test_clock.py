"""The kit's clock: instants in UTC, business dates in the portal's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.servicekit.clock import FixedClock, SystemClock, business_date

CHICAGO = ZoneInfo("America/Chicago")


def test_late_on_new_years_eve_in_chicago_is_still_the_old_year() -> None:
    clock = FixedClock(datetime(2026, 12, 31, 23, 30, tzinfo=CHICAGO))
    assert clock.now() == datetime(2027, 1, 1, 5, 30, tzinfo=UTC)  # already 2027 in UTC
    assert clock.now().tzinfo == UTC
    assert clock.today() == date(2026, 12, 31)
    clock.advance(timedelta(minutes=31))
    assert clock.today() == date(2027, 1, 1)


def test_late_on_leap_day_in_chicago_is_still_29_february() -> None:
    clock = FixedClock(datetime(2028, 2, 29, 23, 30, tzinfo=CHICAGO))
    assert clock.now().date() == date(2028, 3, 1)  # UTC has moved on
    assert clock.today() == date(2028, 2, 29)


def test_another_portal_zone_gives_its_own_date() -> None:
    instant = datetime(2026, 12, 31, 23, 30, tzinfo=CHICAGO)
    assert FixedClock(instant, "UTC").today() == date(2027, 1, 1)
    assert business_date(instant, ZoneInfo("Asia/Tokyo")) == date(2027, 1, 1)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        FixedClock(datetime(2026, 12, 31, 23, 30))
    with pytest.raises(ValueError):
        business_date(datetime(2026, 12, 31, 23, 30), CHICAGO)


def test_the_system_clock_is_aware_and_in_the_portal_zone() -> None:
    clock = SystemClock("America/Chicago")
    now = clock.now()
    assert now.tzinfo == UTC
    assert clock.today() in {business_date(now, CHICAGO),
                             business_date(now + timedelta(seconds=5), CHICAGO)}
