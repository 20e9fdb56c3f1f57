"""Limits on dates people give: a date of birth is not in the future nor more than
120 years before the business date."""

from __future__ import annotations

from datetime import date

MAX_AGE_YEARS = 120
FUTURE_REASON = "must not be in the future"
TOO_OLD_REASON = f"must not be more than {MAX_AGE_YEARS} years ago"


def years_before(day: date, years: int) -> date:
    """The same day ``years`` earlier (28 February for a 29 February in a year without one)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def date_of_birth_reason(birth: date, today: date) -> str | None:
    """Why ``birth`` cannot be a living person's date of birth on ``today`` (None: it can)."""
    if birth > today:
        return FUTURE_REASON
    if birth < years_before(today, MAX_AGE_YEARS):
        return TOO_OLD_REASON
    return None
