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
import operator
import re
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, NamedTuple

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


class Participant(NamedTuple):
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
        return tuple(self)


class Grant(NamedTuple):
    """One valid staff-access row (one grant)."""

    line: int
    iwds_staff_id: str
    worknet_username: str | None
    level: str
    lwia_code: str | None
    office_code: str | None

    def as_copy_row(self) -> tuple[Any, ...]:
        return tuple(self)


Row = Participant | Grant
Parsed = Row | Rejection

# anything SSN-shaped anywhere in a row: the (rare) slow path checks field by field
_SSN_ANYWHERE = re.compile(r"(?<!\d)\d{3}[- ]?\d{2}[- ]?\d{4}(?!\d)")
_SEP = "\x1f"


def record_hash(values: Iterable[object]) -> bytes:
    """A stable digest of a record's content (``updated_at`` excluded)."""
    text = _SEP.join("" if v is None else str(v) for v in values)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class _RowError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _unsafe(values: list[str], names: tuple[str, ...], id_name: str) -> list[str]:
    """Drop SSN-shaped values (an SSN-shaped id rejects the row)."""
    out = []
    for name, v in zip(names, values, strict=True):
        if v and ssn_shaped(v, is_id=name == id_name):
            if name == id_name:
                raise _RowError(f"{name} looks like an SSN")
            v = ""
        out.append(v)
    return out


def _date(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _RowError(f"bad {name} (expected YYYY-MM-DD)") from None


def _lwia(value: str, *, required: bool) -> str | None:
    if not value:
        if required:
            raise _RowError("missing lwia_code")
        return None
    if len(value) == 2 and value.isdigit() and "01" <= value <= "26":
        return value
    if not _LWIA.fullmatch(value) or not 1 <= int(value) <= 26:
        raise _RowError("unknown lwia_code (expected 01 to 26)")
    return f"{int(value):02d}"


def _too_long(values: list[str], names: tuple[str, ...]) -> None:
    for name, v in zip(names, values, strict=True):
        limit = NAME_MAX if name in ("first_name", "last_name", "worknet_username") else CODE_MAX
        if len(v) > limit:
            raise _RowError(f"{name} is longer than {limit} characters")


def parse_participant(line: int, fields: Iterable[str]) -> Participant:
    """One participants row (values in PARTICIPANT_COLUMNS order); raises _RowError."""
    v = list(map(str.strip, fields))
    if _SSN_ANYWHERE.search(_SEP.join(v)):
        v = _unsafe(v, PARTICIPANT_COLUMNS, "iwds_person_id")
    pid, acct, lwia, office, cm, first, last, dob, program, status, exit_d, upd = v
    if not pid:
        raise _RowError("missing iwds_person_id")
    if max(map(len, v)) > CODE_MAX:
        _too_long(v, PARTICIPANT_COLUMNS)
    try:
        account = uuid.UUID(acct) if acct else None
    except ValueError:
        raise _RowError("bad worknet_account_id (expected a UUID)") from None
    lwia = _lwia(lwia, required=True) or ""
    status = status.lower()
    if status not in STATUSES:
        raise _RowError("unknown status (expected active or exited)" if status
                        else "missing status")
    birth, exited = _date(dob, "date_of_birth"), _date(exit_d, "exit_date")
    if not upd:
        raise _RowError("missing updated_at")
    try:
        updated_at = datetime.fromisoformat(upd)
    except ValueError:
        raise _RowError("bad updated_at (expected an ISO 8601 date and time)") from None
    if updated_at.tzinfo is None:
        updated_at = updated_at.replace(tzinfo=UTC)
    digest = hashlib.blake2b(_SEP.join((
        pid, str(account or ""), lwia, office, cm, first, last, str(birth or ""), program,
        status, str(exited or ""))).encode(), digest_size=16).digest()
    return Participant(line, pid, account, lwia, office or None, cm or None, first or None,
                       last or None, birth, program or None, status, exited, updated_at, digest)


def parse_grant(line: int, fields: Iterable[str]) -> Grant:
    v = list(map(str.strip, fields))
    if _SSN_ANYWHERE.search(_SEP.join(v)):
        v = _unsafe(v, STAFF_COLUMNS, "iwds_staff_id")
    staff_id, username, lwia_text, office_text, level = v
    if not staff_id:
        raise _RowError("missing iwds_staff_id")
    _too_long(v, STAFF_COLUMNS)
    level = level.lower()
    if not level:
        raise _RowError("missing access_level")
    if level not in LEVELS:
        raise _RowError("unknown access_level (expected statewide, lwia, office or caseload)")
    lwia = _lwia(lwia_text, required=level in ("lwia", "office"))
    office = office_text or None
    if level == "office" and office is None:
        raise _RowError("missing office_code for access_level office")
    if level == "statewide":
        lwia = office = None
    elif level == "lwia":
        office = None
    return Grant(line, staff_id, username or None, level, lwia, office)


def _safe_id(value: str) -> str:
    value = value.strip()
    if not value or ssn_shaped(value, is_id=True) or len(value) > CODE_MAX:
        return ""
    return value


class Parser:
    """Turns the text lines of one feed file into rows and rejections.

    Give it the lines in order (:meth:`lines`, CSV or NDJSON, decided by the first
    non-blank line). A CSV header missing a required column raises BadFile naming
    it. Columns beyond the feed's are never read, so an ``ssn`` column is dropped
    here and goes nowhere.
    """

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.columns = COLUMNS[feed]
        self.format: Literal["csv", "ndjson"] | None = None
        self.lineno = 0  # physical lines consumed
        self.read = 0
        self.rejected = 0
        self.dropped_columns: list[str] = []
        self._pick: Any = None
        self._width = 0
        self._pending: list[str] = []
        self._seen: dict[object, int] = {}
        self._parse = parse_participant if feed == "participants" else parse_grant

    def lines(self, texts: list[str]) -> Iterator[Parsed]:
        i = 0
        if self.format is None:
            while i < len(texts) and not texts[i].strip():
                i += 1
            if i == len(texts):
                self.lineno += i
                return
            first = texts[i].lstrip("\ufeff \t")
            self.format = "ndjson" if first.startswith("{") else "csv"
            if self.format == "csv":
                self._header(texts[i])
                i += 1
            self.lineno += i
            texts = texts[i:]
        if self.format == "ndjson":
            for text in texts:
                self.lineno += 1
                if text.strip():
                    yield self._json_line(text)
            return
        yield from self._csv_lines(texts)

    def finish(self) -> Parsed | None:
        """The end of the input: a CSV record left open by an unbalanced quote."""
        if self._pending:
            start = self.lineno + 1
            self.lineno += len(self._pending)
            self._pending = []
            self.read += 1
            self.rejected += 1
            return Rejection(start, "", "unterminated quoted field")
        if self.format is None:
            raise BadFile("the file is empty")
        return None

    # -- CSV ---------------------------------------------------------------------------

    def _header(self, text: str) -> None:
        names = [n.strip().lstrip("\ufeff").strip().lower() for n in next(csv.reader([text]))]
        missing = [c for c in self.columns if c not in names]
        if missing:
            raise BadFile(
                f"the header lacks the required column{'s' if len(missing) > 1 else ''} "
                + ", ".join(missing))
        index = [names.index(c) for c in self.columns]
        self._pick = operator.itemgetter(*index)
        self._width = max(index) + 1
        self.dropped_columns = [n for n in names if n not in self.columns]

    def _csv_lines(self, texts: list[str]) -> Iterator[Parsed]:
        batch = self._pending + texts if self._pending else texts
        cut = len(batch)
        quoted = any('"' in t for t in batch)
        if quoted:
            # a quoted field may go on over the next line: keep an open record back
            odd, cut = False, 0
            for n, t in enumerate(batch, start=1):
                if t.count('"') % 2:
                    odd = not odd
                if not odd:
                    cut = n
        self._pending = batch[cut:]
        base = self.lineno
        # a quoted field over two lines keeps its line break
        reader = csv.reader([t + "\n" for t in batch[:cut]] if quoted else batch[:cut])
        consumed = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error:
                self.read += 1
                self.rejected += 1
                yield Rejection(base + consumed + 1, "", "not a CSV row")
                consumed = reader.line_num
                continue
            start = base + consumed + 1
            consumed = reader.line_num
            if not values or (len(values) == 1 and not values[0].strip()):
                continue
            if len(values) < self._width:
                values += [""] * (self._width - len(values))
            yield self._row(start, self._pick(values))
        self.lineno = base + cut

    # -- NDJSON ------------------------------------------------------------------------

    def _json_line(self, text: str) -> Parsed:
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
        values = []
        for c in self.columns:
            v = obj.get(c)
            values.append("" if v is None else (v if isinstance(v, str) else str(v)))
        return self._row(line, tuple(values))

    # -- both --------------------------------------------------------------------------

    def _row(self, line: int, values: tuple[str, ...]) -> Parsed:
        self.read += 1
        try:
            row = self._parse(line, values)
            key: object = row[1] if self.feed == "participants" else row[1:2] + row[3:]
            first = self._seen.setdefault(key, line)
            if first != line:
                what = "iwds_person_id" if self.feed == "participants" else "grant"
                raise _RowError(f"duplicate {what} in this file (first on line {first})")
            return row
        except _RowError as exc:
            self.rejected += 1
            return Rejection(line, _safe_id(values[0]), exc.reason)


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
