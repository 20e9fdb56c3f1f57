"""Rows of a customer import file, checked as plain code (no I/O).

Columns: ``username``, ``first_name``, ``last_name``, ``date_of_birth``
(YYYY-MM-DD), ``ssn``, ``email``; all optional, but a row needs a first or a
last name. Reasons never repeat the value they judge.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from identity.domain.accounts import (
    _clean_name,
    normalize_email,
    normalize_ssn,
    validate_username,
)
from shared.rules.dates import date_of_birth_reason

COLUMNS = ("username", "first_name", "last_name", "date_of_birth", "ssn", "email")


@dataclass(frozen=True)
class ImportRow:
    line: int
    username: str | None
    first_name: str
    last_name: str
    date_of_birth: date | None
    email: str | None
    ssn: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str


def check_columns(header: Iterable[str] | None) -> list[str]:
    """Problems with a file's header: no header, or columns this import does not know."""
    if header is None:
        return ["the file is empty"]
    names = [h.strip() for h in header]
    unknown = [h for h in names if h not in COLUMNS]
    problems = [f"unknown column {h!r} (known: {', '.join(COLUMNS)})" for h in unknown]
    if not any(h in ("first_name", "last_name") for h in names):
        problems.append("a first_name or last_name column is needed")
    return problems


def _date(raw: str) -> date:
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError("must be a date written YYYY-MM-DD") from None


def parse_row(line: int, raw: dict[str, str | None], *, today: date) -> ImportRow | list[RowError]:
    """One row, cleaned, or every reason it cannot be loaded."""

    def get(name: str) -> str:
        return (raw.get(name) or "").strip()

    errors: list[RowError] = []
    names: dict[str, str] = {}
    for name in ("first_name", "last_name"):
        value = get(name)
        if value:
            value, reason = _clean_name(value)
            if reason:
                errors.append(RowError(line, name, reason))
        names[name] = value
    if not names["first_name"] and not names["last_name"]:
        errors.append(RowError(line, "first_name", "a first or a last name is required"))

    dob: date | None = None
    if get("date_of_birth"):
        try:
            dob = _date(get("date_of_birth"))
        except ValueError as exc:
            errors.append(RowError(line, "date_of_birth", str(exc)))
        else:
            if (reason := date_of_birth_reason(dob, today)) is not None:
                errors.append(RowError(line, "date_of_birth", reason))

    cleaned: dict[str, str | None] = {}
    for name, clean in (("ssn", normalize_ssn), ("email", normalize_email),
                        ("username", validate_username)):
        cleaned[name] = None
        if get(name):
            try:
                cleaned[name] = clean(get(name))
            except ValueError as exc:
                errors.append(RowError(line, name, str(exc)))
    if errors:
        return errors
    return ImportRow(line, cleaned["username"], names["first_name"], names["last_name"], dob,
                     cleaned["email"], cleaned["ssn"])


def parse_rows(rows: Iterable[tuple[int, dict[str, str | None]]], *, today: date,
               ) -> Iterator[ImportRow | list[RowError]]:
    for line, raw in rows:
        yield parse_row(line, raw, today=today)


def import_key(row: ImportRow, key: bytes) -> bytes:
    """A keyed fingerprint of the row's content (it holds the SSN): the same row
    imported again is recognised and skipped."""
    # joined with the unit separator, which no checked field can contain
    doc = "\x1f".join([row.username or "", row.first_name, row.last_name,
                        row.date_of_birth.isoformat() if row.date_of_birth else "",
                        row.ssn or "", row.email or ""])
    return hmac.digest(key, doc.encode(), "sha256")
