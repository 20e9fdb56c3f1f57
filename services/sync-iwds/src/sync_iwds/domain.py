"""IWDS feeds as pure rules: reading CSV (optionally gzip) or NDJSON, checking the
header, validating each row, dropping anything shaped like an SSN.

No I/O here beyond decoding bytes handed in: the same parser serves a file read by
the CLI, an HTTP body streamed in chunks and a record taken from the raw topic.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

Feed = Literal["participants", "staff-access"]
Mode = Literal["full", "partial"]
FEEDS: tuple[Feed, ...] = ("participants", "staff-access")

PARTICIPANT_COLUMNS: tuple[str, ...] = (
    "iwds_person_id", "worknet_account_id", "lwia_code", "office_code",
    "case_manager_staff_id", "first_name", "last_name", "date_of_birth", "program",
    "status", "exit_date", "updated_at",
)
STAFF_COLUMNS: tuple[str, ...] = (
    "iwds_staff_id", "worknet_username", "lwia_code", "office_code", "access_level",
)
COLUMNS: dict[Feed, tuple[str, ...]] = {
    "participants": PARTICIPANT_COLUMNS, "staff-access": STAFF_COLUMNS,
}
ID_COLUMN: dict[Feed, str] = {"participants": "iwds_person_id", "staff-access": "iwds_staff_id"}
STATUSES = frozenset({"active", "exited"})
LEVELS = frozenset({"statewide", "lwia", "office", "caseload"})
CODE_MAX, NAME_MAX = 64, 200

# "123-45-6789", "123 45 6789" anywhere in a value; nine bare digits in a value
# that is not an IWDS id (IWDS ids may be long numbers, names and codes never are).
_SSN_SEPARATED = re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)")
_NINE_DIGITS = re.compile(r"\s*\d{9}\s*")
_LWIA = re.compile(r"\d{1,2}")


def ssn_shaped(value: str, *, is_id: bool = False) -> bool:
    """Does ``value`` look like an SSN? (Then it is never kept, logged or echoed.)"""
    if _SSN_SEPARATED.search(value):
        return True
    return not is_id and _NINE_DIGITS.fullmatch(value) is not None


class BadFile(Exception):
    """The whole file is refused (a required column is missing, not text...)."""


@dataclass(frozen=True)
class Rejection:
    line: int
    iwds_id: str  # "" when the id itself is missing or unsafe to keep
    reason: str


@dataclass(frozen=True)
class Participant:
    """One valid participants row, in the order it is copied to staging."""

    line: int
    iwds_person_id: str
    worknet_account_id: uuid.UUID | None
    lwia_code: str
    office_code: str | None
    case_manager_staff_id: str | None
    first_name: str | None
    last_name: str | None
    date_of_birth: date | None
    program: str | None
    status: str
    exit_date: date | None
    updated_at: datetime
    hash: bytes

    def as_copy_row(self) -> tuple[Any, ...]:
        return (
            self.line, self.iwds_person_id, self.worknet_account_id, self.lwia_code,
            self.office_code, self.case_manager_staff_id, self.first_name, self.last_name,
            self.date_of_birth, self.program, self.status, self.exit_date, self.updated_at,
            self.hash,
        )


@dataclass(frozen=True)
class Grant:
    """One valid staff-access row (one grant)."""

    line: int
    iwds_staff_id: str
    worknet_username: str | None
    level: str
    lwia_code: str | None
    office_code: str | None

    def as_copy_row(self) -> tuple[Any, ...]:
        return (self.line, self.iwds_staff_id, self.worknet_username, self.level,
                self.lwia_code, self.office_code)


Row = Participant | Grant
Parsed = Row | Rejection


def record_hash(values: Iterable[object]) -> bytes:
    """A stable digest of a record's content (``updated_at`` excluded)."""
    text = "\x1f".join("" if v is None else str(v) for v in values)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class _RowError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _text(raw: dict[str, str | None], name: str, max_len: int, *, is_id: bool = False
          ) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if ssn_shaped(value, is_id=is_id):
        if is_id:
            raise _RowError(f"{name} looks like an SSN")
        return None  # an SSN-shaped value is dropped, never kept
    if len(value) > max_len:
        raise _RowError(f"{name} is longer than {max_len} characters")
    return value


def _date(raw: dict[str, str | None], name: str) -> date | None:
    value = (raw.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _RowError(f"bad {name} (expected YYYY-MM-DD)") from None


def _timestamp(raw: dict[str, str | None], name: str) -> datetime:
    value = (raw.get(name) or "").strip()
    if not value:
        raise _RowError(f"missing {name}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _RowError(f"bad {name} (expected an ISO 8601 date and time)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _lwia(raw: dict[str, str | None], *, required: bool) -> str | None:
    value = (raw.get("lwia_code") or "").strip()
    if not value:
        if required:
            raise _RowError("missing lwia_code")
        return None
    if not _LWIA.fullmatch(value) or not 1 <= int(value) <= 26:
        raise _RowError("unknown lwia_code (expected 01 to 26)")
    return f"{int(value):02d}"


def parse_participant(line: int, raw: dict[str, str | None]) -> Participant:
    """One participants row; raises _RowError with the reason it is rejected."""
    person_id = _text(raw, "iwds_person_id", CODE_MAX, is_id=True)
    if person_id is None:
        raise _RowError("missing iwds_person_id")
    account_text = (raw.get("worknet_account_id") or "").strip()
    try:
        account = uuid.UUID(account_text) if account_text else None
    except ValueError:
        raise _RowError("bad worknet_account_id (expected a UUID)") from None
    lwia = _lwia(raw, required=True)
    assert lwia is not None
    status = (raw.get("status") or "").strip().lower()
    if not status:
        raise _RowError("missing status")
    if status not in STATUSES:
        raise _RowError("unknown status (expected active or exited)")
    values = (
        person_id, account, lwia,
        _text(raw, "office_code", CODE_MAX), _text(raw, "case_manager_staff_id", CODE_MAX),
        _text(raw, "first_name", NAME_MAX), _text(raw, "last_name", NAME_MAX),
        _date(raw, "date_of_birth"), _text(raw, "program", CODE_MAX), status,
        _date(raw, "exit_date"),
    )
    updated_at = _timestamp(raw, "updated_at")
    return Participant(line, *values, updated_at, record_hash(values))


def parse_grant(line: int, raw: dict[str, str | None]) -> Grant:
    staff_id = _text(raw, "iwds_staff_id", CODE_MAX, is_id=True)
    if staff_id is None:
        raise _RowError("missing iwds_staff_id")
    level = (raw.get("access_level") or "").strip().lower()
    if not level:
        raise _RowError("missing access_level")
    if level not in LEVELS:
        raise _RowError("unknown access_level (expected statewide, lwia, office or caseload)")
    lwia = _lwia(raw, required=level in ("lwia", "office"))
    office = _text(raw, "office_code", CODE_MAX)
    if level == "office" and office is None:
        raise _RowError("missing office_code for access_level office")
    if level == "statewide":
        lwia = office = None
    elif level == "lwia":
        office = None
    return Grant(line, staff_id, _text(raw, "worknet_username", NAME_MAX), level, lwia, office)


def _safe_id(feed: Feed, raw: dict[str, str | None]) -> str:
    value = (raw.get(ID_COLUMN[feed]) or "").strip()
    if not value or ssn_shaped(value, is_id=True) or len(value) > CODE_MAX:
        return ""
    return value


class Parser:
    """Turns the text lines of one feed file into rows and rejections.

    Call :meth:`line` with each physical line in order (CSV or NDJSON, decided by
    the first non-blank line). A CSV header missing a required column raises
    BadFile naming it. Columns beyond the feed's are never read, so an ``ssn``
    column is dropped here and goes nowhere.
    """

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.format: Literal["csv", "ndjson"] | None = None
        self.lineno = 0
        self.read = 0
        self.rejected = 0
        self.dropped_columns: list[str] = []
        self._index: list[tuple[str, int]] = []
        self._pending: list[str] = []
        self._pending_start = 0
        self._seen: dict[object, int] = {}

    def line(self, text: str) -> Parsed | None:
        self.lineno += 1
        if self.format is None:
            if not text.strip():
                return None
            self.format = "ndjson" if text.lstrip("\ufeff \t").startswith("{") else "csv"
            if self.format == "csv":
                self._header(text)
                return None
        if self.format == "ndjson":
            return self._json_line(text)
        return self._csv_line(text)

    def lines(self, texts: Iterable[str]) -> Iterator[Parsed]:
        for text in texts:
            out = self.line(text)
            if out is not None:
                yield out

    def finish(self) -> Parsed | None:
        """The end of the input: a CSV record left open by an unbalanced quote."""
        if self._pending:
            self._pending = []
            self.read += 1
            self.rejected += 1
            return Rejection(self._pending_start, "", "unterminated quoted field")
        if self.format is None:
            raise BadFile("the file is empty")
        return None

    # -- CSV ---------------------------------------------------------------------------

    def _header(self, text: str) -> None:
        names = [n.strip().lstrip("\ufeff").strip().lower() for n in next(csv.reader([text]))]
        missing = [c for c in COLUMNS[self.feed] if c not in names]
        if missing:
            raise BadFile(
                f"the header lacks the required column{'s' if len(missing) > 1 else ''} "
                + ", ".join(missing))
        self._index = [(c, names.index(c)) for c in COLUMNS[self.feed]]
        self.dropped_columns = [n for n in names if n not in COLUMNS[self.feed]]

    def _csv_line(self, text: str) -> Parsed | None:
        if self._pending:
            self._pending.append(text)
        elif not text.strip():
            return None
        else:
            self._pending, self._pending_start = [text], self.lineno
        if sum(part.count('"') for part in self._pending) % 2:
            return None  # a quoted field goes on over the next line
        record = "\n".join(self._pending)
        self._pending = []
        try:
            values = next(csv.reader([record]))
        except csv.Error:
            self.read += 1
            self.rejected += 1
            return Rejection(self._pending_start, "", "not a CSV row")
        raw = {c: (values[i] if i < len(values) else None) for c, i in self._index}
        return self._row(self._pending_start, raw)

    # -- NDJSON ------------------------------------------------------------------------

    def _json_line(self, text: str) -> Parsed | None:
        if not text.strip():
            return None
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            self.read += 1
            self.rejected += 1
            return Rejection(self.lineno, "", "not a JSON object")
        return self.record(obj, self.lineno)

    def record(self, obj: dict[str, Any], line: int) -> Parsed:
        """One record given as a mapping (NDJSON line, raw-topic record)."""
        raw: dict[str, str | None] = {}
        for c in COLUMNS[self.feed]:
            v = obj.get(c)
            raw[c] = None if v is None else (v if isinstance(v, str) else str(v))
        return self._row(line, raw)

    # -- both --------------------------------------------------------------------------

    def _row(self, line: int, raw: dict[str, str | None]) -> Parsed:
        self.read += 1
        try:
            row: Row
            if self.feed == "participants":
                row = parse_participant(line, raw)
                key: object = row.iwds_person_id
                what = "iwds_person_id"
            else:
                row = parse_grant(line, raw)
                key = (row.iwds_staff_id, row.level, row.lwia_code, row.office_code)
                what = "grant"
            first = self._seen.setdefault(key, line)
            if first != line:
                raise _RowError(f"duplicate {what} in this file (first on line {first})")
            return row
        except _RowError as exc:
            self.rejected += 1
            return Rejection(line, _safe_id(self.feed, raw), exc.reason)


class Decoder:
    """Bytes in chunks (gzip or not, UTF-8 with or without a BOM) -> text lines."""

    def __init__(self) -> None:
        self._inflate: Any = None
        self._started = False
        self._text = codecs.getincrementaldecoder("utf-8-sig")()
        self._rest = ""
        self.bytes_in = 0

    def feed(self, chunk: bytes) -> list[str]:
        self.bytes_in += len(chunk)
        if not self._started:
            if not chunk:
                return []
            self._started = True
            if chunk[:2] == b"\x1f\x8b":
                self._inflate = zlib.decompressobj(wbits=47)
        try:
            if self._inflate is not None:
                chunk = self._inflate.decompress(chunk)
            text = self._rest + self._text.decode(chunk)
        except zlib.error:
            raise BadFile("not a valid gzip file") from None
        except UnicodeDecodeError:
            raise BadFile("not UTF-8 text") from None
        lines = text.split("\n")
        self._rest = lines.pop()
        return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]

    def end(self) -> list[str]:
        try:
            if self._inflate is not None:
                tail = self._inflate.flush()
                if not self._inflate.eof:
                    raise BadFile("the gzip file is truncated")
                text = self._rest + self._text.decode(tail, final=True)
            else:
                text = self._rest + self._text.decode(b"", final=True)
        except UnicodeDecodeError:
            raise BadFile("not UTF-8 text") from None
        self._rest = ""
        return [text.rstrip("\r")] if text else []


@dataclass
class Counts:
    read: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    rejected: int = 0
    unlinked: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def should_hold(removed: int, held_before: int, share: float) -> bool:
    """A full extract removing more than ``share`` of the records held waits for a person."""
    return held_before > 0 and removed > share * held_before


def exit_code(status: str) -> int:
    """The CLI's exit status for a run's outcome: 0 done, 3 held, 1 anything else."""
    return {"done": 0, "held": 3}.get(status, 1)
