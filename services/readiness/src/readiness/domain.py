"""readiness's rules: what a good record is, which version of a thing wins, what a
customer's readiness looks like, who has completed an assessment. No I/O here."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.schemas.base import FORBIDDEN_NAME_PARTS
from shared.schemas.readiness import RECORD_KINDS
from shared.servicekit.errors import FieldError, InvalidInput

ASSESSMENT = "assessment_completed"
MODULE = "employment101_module_completed"
PLAN = "employment101_plan_updated"
OUTCOME = "outcome_recorded"

OUTCOME_KINDS = ("certificate", "credential", "diploma", "employment")
STEP_STATUSES = ("not_started", "in_progress", "completed")
MAX_TEXT = 200
MAX_SUMMARY = 10_000
MAX_ITEMS = 200
MAX_RAW = 10_000


class BadRecord(ValueError):
    """A record that cannot be accepted; the message is the reason (never a value)."""


@dataclass(slots=True)
class Record:
    """One accepted record, as stored."""

    record_id: str
    kind: str
    account_id: str  # a UUID in its canonical form
    occurred_at: datetime
    code: str | None
    completed_at: datetime | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    line: int | None
    record_id: str | None
    kind: str | None
    reason: str
    raw: str


@dataclass(frozen=True)
class Catalogue:
    assessments: frozenset[str]
    modules: frozenset[str]


@dataclass
class Screened:
    """One batch after validation: the records to store and the ones kept aside."""

    records: list[Record] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


# -- field checks ------------------------------------------------------------------

def _text(raw: Mapping[str, Any], name: str, *, required: bool = True,
          limit: int = MAX_TEXT) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise BadRecord(f"{name}: required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRecord(f"{name}: must be non-empty text")
    if len(value) > limit:
        raise BadRecord(f"{name}: longer than {limit} characters")
    return value.strip()


def _moment(raw: Mapping[str, Any], name: str) -> datetime:
    value = raw.get(name)
    if value is None:
        raise BadRecord(f"{name}: required")
    if not isinstance(value, str):
        raise BadRecord(f"{name}: must be an ISO 8601 date-time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord(f"{name}: must be an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise BadRecord(f"{name}: needs a UTC offset")
    return moment


def _day(value: Any, name: str, *, required: bool = True) -> date | None:
    if value is None:
        if required:
            raise BadRecord(f"{name}: required")
        return None
    if not isinstance(value, str):
        raise BadRecord(f"{name}: must be a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRecord(f"{name}: must be a date (YYYY-MM-DD)") from None


def _number(value: Any, name: str) -> float | int:
    if value is None:
        raise BadRecord(f"{name}: required")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecord(f"{name}: must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRecord(f"{name}: must be a finite number")
    return value


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _account(raw: Mapping[str, Any]) -> str:
    """The account id in its canonical text form (checked here, parsed by PostgreSQL: a
    regular expression costs a fraction of building a UUID object per record)."""
    value = raw.get("account_id")
    if value is None:
        raise BadRecord("account_id: required")
    if not isinstance(value, str) or _UUID.fullmatch(value) is None:
        raise BadRecord("account_id: must be a UUID")
    return value


# -- one record --------------------------------------------------------------------

def screen_one(raw: Any, catalogue: Catalogue) -> Record:
    """The record ``raw`` (a decoded JSON object) describes; BadRecord with the reason."""
    if not isinstance(raw, dict):
        raise BadRecord("a record must be a JSON object")
    kind = raw.get("kind")
    if kind not in RECORD_KINDS:
        raise BadRecord("kind: must be one of " + ", ".join(RECORD_KINDS))
    record_id = _text(raw, "record_id")
    assert record_id is not None
    account_id = _account(raw)
    occurred_at = _moment(raw, "occurred_at")
    code: str | None = None
    completed_at: datetime | None = None
    data: dict[str, Any]
    if kind == ASSESSMENT:
        code = _text(raw, "assessment_code", limit=64)
        if code not in catalogue.assessments:
            raise BadRecord("assessment_code: not in the catalogue")
        version = raw.get("version")
        if version is None:
            raise BadRecord("version: required")
        if isinstance(version, bool) or not isinstance(version, str | int | float):
            raise BadRecord("version: must be text or a number")
        if len(str(version)) > 40:
            raise BadRecord("version: longer than 40 characters")
        completed_at = _moment(raw, "completed_at")
        scores = raw.get("scores")
        if not isinstance(scores, dict):
            raise BadRecord("scores: must be an object of scale -> number")
        if len(scores) > MAX_ITEMS:
            raise BadRecord(f"scores: more than {MAX_ITEMS} scales")
        for scale, value in scores.items():
            if not scale or len(scale) > MAX_TEXT:
                raise BadRecord("scores: a scale name must be 1 to 200 characters")
            _number(value, "scores")
        data = {"version": str(version), "scores": scores,
                "summary": _text(raw, "summary", required=False, limit=MAX_SUMMARY)}
    elif kind == MODULE:
        code = _text(raw, "module_code", limit=64)
        if code not in catalogue.modules:
            raise BadRecord("module_code: not in the catalogue")
        completed_at = _moment(raw, "completed_at")
        score = _number(raw.get("score"), "score")
        attempt = raw.get("attempt")
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise BadRecord("attempt: must be a whole number from 1")
        data = {"score": score, "attempt": attempt}
    elif kind == PLAN:
        goals = raw.get("goals")
        if not isinstance(goals, list) or len(goals) > MAX_ITEMS:
            raise BadRecord(f"goals: must be a list of at most {MAX_ITEMS} texts")
        if not all(isinstance(g, str) and g.strip() and len(g) <= 2000 for g in goals):
            raise BadRecord("goals: each goal must be non-empty text (at most 2000 characters)")
        steps = raw.get("steps")
        if not isinstance(steps, list) or len(steps) > MAX_ITEMS:
            raise BadRecord(f"steps: must be a list of at most {MAX_ITEMS} steps")
        data = {"goals": [g.strip() for g in goals], "steps": [_step(s) for s in steps]}
    else:
        outcome_kind = raw.get("outcome_kind")
        if outcome_kind not in OUTCOME_KINDS:
            raise BadRecord("outcome_kind: must be one of " + ", ".join(OUTCOME_KINDS))
        issued_on = _day(raw.get("issued_on"), "issued_on")
        data = {"outcome_kind": outcome_kind, "title": _text(raw, "title"),
                "issuer": _text(raw, "issuer"), "issued_on": str(issued_on),
                "credential_id": _text(raw, "credential_id", required=False)}
    return Record(record_id, kind, account_id, occurred_at, code, completed_at, data)


def _step(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRecord("steps: each step must be an object {title, due_on, status}")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 2000:
        raise BadRecord("steps.title: must be non-empty text (at most 2000 characters)")
    due_on = _day(raw.get("due_on"), "steps.due_on", required=False)
    status = raw.get("status", "not_started")
    if status not in STEP_STATUSES:
        raise BadRecord("steps.status: must be one of " + ", ".join(STEP_STATUSES))
    return {"title": title.strip(), "due_on": None if due_on is None else str(due_on),
            "status": status}


def _clip(raw: Any) -> str:
    """A rejected record as kept for the operator: no field that looks like an SSN or a
    password (a producer's mistake must not be copied on), at most MAX_RAW characters."""
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items()
               if not any(part in str(k).lower() for part in FORBIDDEN_NAME_PARTS)}
    text = raw if isinstance(raw, str) else json.dumps(raw, default=str)
    return text[:MAX_RAW]


def screen(items: Iterable[tuple[int | None, Any]], catalogue: Catalogue) -> Screened:
    """Validate a batch of ``(line, decoded JSON or raw text)``; a record_id seen twice in
    the batch keeps its latest version (by occurred_at), as the store would."""
    out = Screened()
    latest: dict[str, Record] = {}
    for line, raw in items:
        if isinstance(raw, BadLine):
            out.rejected.append(Rejection(line, None, None, raw.reason, raw.text[:MAX_RAW]))
            continue
        try:
            record = screen_one(raw, catalogue)
        except BadRecord as exc:
            rid = raw.get("record_id") if isinstance(raw, dict) else None
            kind = raw.get("kind") if isinstance(raw, dict) else None
            out.rejected.append(Rejection(
                line, rid[:MAX_TEXT] if isinstance(rid, str) else None,
                kind[:64] if isinstance(kind, str) else None, str(exc), _clip(raw)))
            continue
        seen = latest.get(record.record_id)
        if seen is None or record.occurred_at > seen.occurred_at:
            latest[record.record_id] = record
    out.records = list(latest.values())
    return out


@dataclass(frozen=True)
class BadLine:
    """A feed line that is not JSON at all."""

    reason: str
    text: str


def decode_line(line: bytes) -> Any:
    """A feed line as JSON, or a BadLine saying why not."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return BadLine("not UTF-8 text", line.decode("utf-8", "replace"))
    try:
        return json.loads(text)
    except ValueError:
        return BadLine("not a JSON object", line.decode("utf-8", "replace"))


# -- reading it back ----------------------------------------------------------------

@dataclass(frozen=True)
class Stored:
    record_id: str
    kind: str
    occurred_at: datetime
    code: str | None
    completed_at: datetime | None
    data: dict[str, Any]


def _newest_first(rows: Sequence[Stored]) -> list[Stored]:
    return sorted(rows, key=lambda r: (r.completed_at or r.occurred_at, r.occurred_at),
                  reverse=True)


def readiness_view(rows: Sequence[Stored], assessment_names: Mapping[str, str],
                   module_names: Mapping[str, str]) -> dict[str, Any]:
    """A customer's readiness: each assessment's latest result with its history, each
    Employment 101 module's latest attempt, the latest plan, and the outcomes."""
    by_kind: dict[str, list[Stored]] = {k: [] for k in RECORD_KINDS}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)

    assessments: dict[str, list[Stored]] = {}
    for row in _newest_first(by_kind[ASSESSMENT]):
        assessments.setdefault(row.code or "", []).append(row)
    order = {code: i for i, code in enumerate(assessment_names)}
    assessment_items = []
    for code in sorted(assessments, key=lambda c: (order.get(c, len(order)), c)):
        results = [_assessment_result(r) for r in assessments[code]]
        assessment_items.append({"code": code, "name": assessment_names.get(code, code),
                                 **results[0], "history": results})

    modules: dict[str, list[Stored]] = {}
    for row in _newest_first(by_kind[MODULE]):
        modules.setdefault(row.code or "", []).append(row)
    morder = {code: i for i, code in enumerate(module_names)}
    module_items = []
    for code in sorted(modules, key=lambda c: (morder.get(c, len(morder)), c)):
        attempts = [{"record_id": r.record_id, "score": r.data["score"],
                     "attempt": r.data["attempt"], "completed_at": r.completed_at}
                    for r in modules[code]]
        module_items.append({"code": code, "name": module_names.get(code, code),
                             **{k: attempts[0][k] for k in ("score", "attempt", "completed_at")},
                             "best_score": max(a["score"] for a in attempts),
                             "attempts": attempts})

    plans = sorted(by_kind[PLAN], key=lambda r: r.occurred_at, reverse=True)
    plan = None
    if plans:
        p = plans[0]
        plan = {"record_id": p.record_id, "updated_at": p.occurred_at,
                "goals": p.data["goals"], "steps": p.data["steps"]}

    outcomes = [{"record_id": r.record_id, **r.data}
                for r in sorted(by_kind[OUTCOME],
                                key=lambda r: (r.data["issued_on"], r.occurred_at), reverse=True)]
    return {"assessments": assessment_items,
            "employment101": {"modules": module_items, "plan": plan},
            "outcomes": outcomes}


def _assessment_result(r: Stored) -> dict[str, Any]:
    return {"record_id": r.record_id, "version": r.data["version"],
            "completed_at": r.completed_at, "scores": r.data["scores"],
            "summary": r.data.get("summary")}


# -- the dashboard ------------------------------------------------------------------

STATUSES = ("completed", "not_completed")


@dataclass(frozen=True)
class Window:
    """A date range in the portal's zone as the instants [start, end)."""

    start: datetime | None
    end: datetime | None


def window(from_: date | None, to: date | None, zone: ZoneInfo) -> Window:
    """``from_`` and ``to`` are business dates, both included."""
    if from_ is not None and to is not None and to < from_:
        raise InvalidInput([FieldError("to", "must not be before from")])
    start = None if from_ is None else datetime.combine(from_, time(0), zone)
    end = None if to is None else datetime.combine(to + timedelta(days=1), time(0), zone)
    return Window(start, end)
