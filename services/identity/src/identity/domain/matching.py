"""Person matching as plain code: Fellegi–Sunter scoring of candidates, with evidence.

No I/O here. The repository retrieves candidates from the indexed blocks of
``identity.blocking``, then ``rank`` scores them field by field. Weights, prior
and their reasons live in ``identity.matching_weights``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Literal
from uuid import UUID

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from identity.domain.blocking import (
    NormalName,
    SsnRelation,
    is_nickname,
    normalize_name,
    ssn_relation,
)
from identity.domain.matching_weights import (
    FIELD_LABELS,
    PRIOR_LOG2_ODDS,
    RULES,
    probability_of,
    weight_for,
)

Band = Literal["strong", "possible"]

CLOSE_JARO_WINKLER = 0.92
# An exact SSN or IDOC number is proposed whatever the other fields say.
UNIQUE_FIELDS = frozenset({"ssn", "idoc_number"})
QUERY_REASON = (
    "give an SSN, an identifier (IDOC number or email),"
    " or two of first name, last name and date of birth"
)

# --- Records ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """The fields the matcher compares; all optional. The SSN digits stay out of repr."""

    first_name: str | None = None
    last_name: str | None = None
    date_of_birth: date | None = None
    ssn_digits: str | None = field(default=None, repr=False)
    ssn_last4: str | None = None
    idoc_number: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """An account from the blocks. ``ssn_relation`` is set by the repository from the
    keyed lookups (None: not comparable, or left to ``score`` to derive from digits
    or last four)."""

    account_id: UUID
    person: Person
    ssn_relation: SsnRelation | None = None
    username: str = ""


@dataclass(frozen=True, slots=True)
class Evidence:
    field: str  # "first_name", "last_name", "name", "date_of_birth", "ssn", ...
    outcome: str  # for staff: "first name: nickname Bill ↔ William"
    weight: float  # log2 likelihood ratio, 0 when not compared
    code: str  # machine outcome: "exact", "nickname", "not_compared", ...


@dataclass(frozen=True, slots=True)
class Thresholds:
    strong: float = 0.95
    possible: float = 0.6

    def __post_init__(self) -> None:
        if not 0.0 < self.possible <= self.strong <= 1.0:
            raise ValueError("thresholds need 0 < possible <= strong <= 1")


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True, slots=True)
class Match:
    candidate: Candidate
    total_weight: float
    probability: float
    band: Band | None
    evidence: list[Evidence]


# --- Field comparisons ------------------------------------------------------------


@lru_cache(maxsize=4096)  # Evidence is frozen: one object per outcome is shared
def _ev(fld: str, code: str, detail: str | None = None) -> Evidence:
    label = FIELD_LABELS[fld]
    if code == "not_compared":
        return Evidence(fld, f"{label}: not compared", 0.0, code)
    rule = RULES[fld][code]
    return Evidence(fld, f"{label}: {detail or rule.text}", round(rule.weight, 2), code)


def _present(raw: str | None) -> NormalName | None:
    if raw is None:
        return None
    n = normalize_name(raw)
    return n if n.full else None


def _first_name(q: str | None, c: str | None) -> Evidence:
    a, b = _present(q), _present(c)
    if a is None or b is None or q is None or c is None:
        return _ev("first_name", "not_compared")
    if a.full == b.full:
        return _ev("first_name", "exact")
    if min(len(a.full), len(b.full)) == 1:
        return _ev("first_name", "initial" if a.full[0] == b.full[0] else "different")
    if is_nickname(a.full, b.full):
        return _ev("first_name", "nickname", f"nickname {q.strip()} ↔ {c.strip()}")
    if JaroWinkler.similarity(a.full, b.full) >= CLOSE_JARO_WINKLER:
        return _ev("first_name", "close")
    return _ev("first_name", "different")


def _last_name(q: str | None, c: str | None) -> Evidence:
    a, b = _present(q), _present(c)
    if a is None or b is None:
        return _ev("last_name", "not_compared")
    if a.full == b.full:
        return _ev("last_name", "exact")
    if set(a.parts) & set(b.parts):
        return _ev("last_name", "compound")
    # One edit or one swap of adjacent letters: short names ("Lee"/"Les", "Ali"/"Ail")
    # fall below the Jaro–Winkler bar after a single typo.
    if JaroWinkler.similarity(a.full, b.full) >= CLOSE_JARO_WINKLER or (
        min(len(a.full), len(b.full)) >= 3 and DamerauLevenshtein.distance(a.full, b.full) <= 1
    ):
        return _ev("last_name", "close")
    return _ev("last_name", "different")


def _names(q: Person, c: Person) -> list[Evidence]:
    """Straight comparison, or the crossed one (the query's last name as a first name,
    its first as a last) plus the log-probability of a swap, whichever weighs more."""
    first, last = _first_name(q.first_name, c.first_name), _last_name(q.last_name, c.last_name)
    if first.weight + last.weight >= _BEST_CROSSED:
        return [first, last]  # no crossing can weigh more
    cross_f, cross_l = _first_name(q.last_name, c.first_name), _last_name(q.first_name, c.last_name)
    crossed = cross_f.weight + cross_l.weight + RULES["name"]["swapped"].weight
    if min(cross_f.weight, cross_l.weight) > 0 and crossed > first.weight + last.weight:
        text = RULES["name"]["swapped"].text
        if (cross_f.code, cross_l.code) != ("exact", "exact"):
            text += f" ({cross_f.outcome}; {cross_l.outcome})"
        return [Evidence("name", f"name: {text}", round(crossed, 2), "swapped")]
    return [first, last]


_BEST_CROSSED = (
    RULES["first_name"]["exact"].weight + RULES["last_name"]["exact"].weight
    + RULES["name"]["swapped"].weight
)


def _digits8(d: date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def _date_of_birth(q: date | None, c: date | None) -> Evidence:
    if q is None or c is None:
        return _ev("date_of_birth", "not_compared")
    if q == c:
        return _ev("date_of_birth", "exact")
    if (q.year, q.month, q.day) == (c.year, c.day, c.month):
        return _ev("date_of_birth", "day_month_swapped")
    if (q.month, q.day) == (c.month, c.day) and abs(q.year - c.year) == 1:
        return _ev("date_of_birth", "year_off_by_one")
    if sum(x != y for x, y in zip(_digits8(q), _digits8(c), strict=True)) == 1:
        return _ev("date_of_birth", "one_digit")
    return _ev("date_of_birth", "different")


def _last4(p: Person) -> str | None:
    return p.ssn_digits[-4:] if p.ssn_digits else p.ssn_last4


def _ssn(q: Person, cand: Candidate) -> Evidence:
    relation = cand.ssn_relation
    c = cand.person
    if relation is None and q.ssn_digits and c.ssn_digits:
        relation = ssn_relation(q.ssn_digits, c.ssn_digits)
    if relation is None:
        q4, c4 = _last4(q), _last4(c)
        if q4 and c4:
            relation = "last4_equal" if q4 == c4 else "different"
    return _ev("ssn", relation or "not_compared")


def _identifier(fld: str, q: str | None, c: str | None) -> Evidence:
    if not q or not c:
        return _ev(fld, "not_compared")
    return _ev(fld, "equal" if q == c else "different")


def _idoc(raw: str | None) -> str | None:
    return (re.sub(r"[^0-9A-Za-z]", "", raw).upper().lstrip("0") or None) if raw else None


def _email(raw: str | None) -> str | None:
    return (raw.strip().casefold() or None) if raw else None


# --- Scoring ----------------------------------------------------------------------


def score(
    query: Person,
    candidate: Candidate,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    *,
    prior_log2_odds: float = PRIOR_LOG2_ODDS,
) -> Match:
    """Compare every field; the total weight is the sum of the shown (rounded) weights."""
    rest = _other_fields(query, candidate)
    evidence = [*_names(query, candidate.person), *rest]
    total = round(sum(e.weight for e in evidence), 2)
    p = probability_of(total, prior_log2_odds)
    band: Band | None = (
        "strong" if p >= thresholds.strong else "possible" if p >= thresholds.possible else None
    )
    codes = {e.field: e.code for e in evidence}
    if band is None and any(codes.get(f) == "equal" for f in UNIQUE_FIELDS):
        band = "possible"  # one SSN or IDOC number is one person's: staff must see it
    if band == "strong" and codes.get("first_name") == "different" and codes.get("ssn") != "equal":
        # Twins: same surname and birthday, SSNs a digit apart, other first names. The
        # fields are not independent here, so the sum overstates it: staff decide.
        band = "possible"
    return Match(candidate, total, p, band, evidence)


def _other_fields(query: Person, candidate: Candidate) -> list[Evidence]:
    c = candidate.person
    return [
        _date_of_birth(query.date_of_birth, c.date_of_birth),
        _ssn(query, candidate),
        _identifier("idoc_number", _idoc(query.idoc_number), _idoc(c.idoc_number)),
        _identifier("email", _email(query.email), _email(c.email)),
    ]


_BEST_NAMES = RULES["first_name"]["exact"].weight + RULES["last_name"]["exact"].weight


def _cannot_reach(query: Person, cand: Candidate, needed: float) -> bool:
    """True when even exact names could not lift the candidate to ``needed`` (and no
    SSN or IDOC number is equal): the names need not be compared at all."""
    rest = _other_fields(query, cand)
    if any(e.code == "equal" and e.field in UNIQUE_FIELDS for e in rest):
        return False
    return sum(e.weight for e in rest) + _BEST_NAMES + 0.05 < needed  # 0.05: rounding


def rank(
    query: Person,
    candidates: Iterable[Candidate],
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    limit: int = 5,
) -> list[Match]:
    """The best ``limit`` candidates at or above ``possible``, best first (ties: input order)."""
    needed = weight_for(thresholds.possible)
    seen: set[UUID] = set()
    matches: list[Match] = []
    for cand in candidates:
        if cand.account_id in seen:
            continue
        seen.add(cand.account_id)
        if _cannot_reach(query, cand, needed):
            continue
        m = score(query, cand, thresholds)
        if m.band is not None:
            matches.append(m)
    matches.sort(key=lambda m: m.total_weight, reverse=True)
    return matches[:limit]


def check_query(query: Person) -> None:
    """ValueError unless the query has an SSN, an identifier, or two of names and DOB."""
    if query.ssn_digits or _idoc(query.idoc_number) or _email(query.email):
        return
    have = [_present(query.first_name), _present(query.last_name), query.date_of_birth]
    if sum(x is not None for x in have) < 2:
        raise ValueError(QUERY_REASON)
