"""Person matching as plain code: Fellegi–Sunter scoring of candidates, with evidence.

No I/O here. The repository retrieves candidates from the indexed blocks of
``identity.blocking``, then ``rank`` scores them field by field. Weights, prior
and their reasons live in ``identity.matching_weights``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Literal
from uuid import UUID

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from identity.domain.blocking import (
    NormalName,
    is_nickname,
    normalize_name,
    ssn_relation,
)
from identity.domain.matching_weights import (
    DEFAULT_WEIGHTS,
    FIELD_LABELS,
    Vector,
    Weights,
    probability_of,
    weight_for,
)
from identity.domain.records import QUERY_REASON, Candidate, Person

Band = Literal["strong", "possible", "weak"]

CLOSE_JARO_WINKLER = 0.92
# An exact SSN or IDOC number is proposed whatever the other fields say.
UNIQUE_FIELDS = frozenset({"ssn", "idoc_number"})
# --- Records ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    field: str  # "first_name", "last_name", "name", "date_of_birth", "ssn", ...
    outcome: str  # for staff: "first name: nickname Bill ↔ William"
    weight: float  # log2 likelihood ratio, 0 when not compared
    code: str  # machine outcome: "exact", "nickname", "not_compared", ...


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Probabilities of "same person" at which a candidate is in a band.

    Two jobs: the review list staff see holds every candidate at or above ``weak``
    (real evidence, up to five, ranked); ``strong`` is what decisions without a person
    rely on (registration's refusal, IWDS auto-linking) and must stay exact, so on top
    of its threshold it needs fields that do not contradict it (see ``score``).
    """

    strong: float = 0.95
    possible: float = 0.6
    weak: float = 0.02

    def __post_init__(self) -> None:
        if not 0.0 < self.weak <= self.possible <= self.strong <= 1.0:
            raise ValueError("thresholds need 0 < weak <= possible <= strong <= 1")


DEFAULT_THRESHOLDS = Thresholds()


def thresholds_from(s: Any) -> Thresholds:
    """The bands' thresholds from identity's settings (match_strong, match_possible,
    match_weak)."""
    return Thresholds(strong=s.match_strong, possible=s.match_possible, weak=s.match_weak)


@dataclass(frozen=True, slots=True)
class Match:
    candidate: Candidate
    total_weight: float
    probability: float
    band: Band | None
    evidence: list[Evidence]


# --- Field comparisons ------------------------------------------------------------


@lru_cache(maxsize=8192)  # Evidence is frozen: one object per outcome is shared
def _ev(fld: str, code: str, detail: str | None = None, w: Weights = DEFAULT_WEIGHTS
        ) -> Evidence:
    label = FIELD_LABELS[fld]
    if code == "not_compared":
        return Evidence(fld, f"{label}: not compared", 0.0, code)
    rule = w.rules[fld][code]
    return Evidence(fld, f"{label}: {detail or rule.text}", round(rule.weight, 2), code)


@lru_cache(maxsize=65_536)
def _exact_name(fld: str, name: str, w: Weights) -> Evidence:
    """An exact name, weighed by how common it is (term-frequency adjustment)."""
    weight = w.exact_name_weight(fld, name)
    plain = w.rules[fld]["exact"].weight
    text = "exact" if abs(weight - plain) < 0.5 else (
        "exact (a rare name)" if weight > plain else "exact (a common name)")
    return Evidence(fld, f"{FIELD_LABELS[fld]}: {text}", round(weight, 2), "exact")


def _present(raw: str | None) -> NormalName | None:
    if raw is None:
        return None
    n = normalize_name(raw)
    return n if n.full else None


def _first_name(q: str | None, c: str | None, w: Weights = DEFAULT_WEIGHTS) -> Evidence:
    a, b = _present(q), _present(c)
    if a is None or b is None or q is None or c is None:
        return _ev("first_name", "not_compared")
    if a.full == b.full:
        return _exact_name("first_name", a.full, w)
    if min(len(a.full), len(b.full)) == 1:
        return _ev("first_name", "initial" if a.full[0] == b.full[0] else "different", None, w)
    if is_nickname(a.full, b.full):
        return _ev("first_name", "nickname", f"nickname {q.strip()} ↔ {c.strip()}", w)
    if JaroWinkler.similarity(a.full, b.full) >= CLOSE_JARO_WINKLER or (
        min(len(a.full), len(b.full)) >= 3 and DamerauLevenshtein.distance(a.full, b.full) <= 1
    ):  # "Amy" / "May": one swap, far apart for Jaro–Winkler
        return _ev("first_name", "close", None, w)
    return _ev("first_name", "different", None, w)


def _last_name(q: str | None, c: str | None, w: Weights = DEFAULT_WEIGHTS) -> Evidence:
    a, b = _present(q), _present(c)
    if a is None or b is None:
        return _ev("last_name", "not_compared")
    if a.full == b.full:
        return _exact_name("last_name", a.full, w)
    if set(a.parts) & set(b.parts):
        return _ev("last_name", "compound", None, w)
    # One edit or one swap of adjacent letters: short names ("Lee"/"Les", "Ali"/"Ail")
    # fall below the Jaro–Winkler bar after a single typo.
    if JaroWinkler.similarity(a.full, b.full) >= CLOSE_JARO_WINKLER or (
        min(len(a.full), len(b.full)) >= 3 and DamerauLevenshtein.distance(a.full, b.full) <= 1
    ):
        return _ev("last_name", "close", None, w)
    return _ev("last_name", "different", None, w)


def _names(q: Person, c: Person, w: Weights = DEFAULT_WEIGHTS) -> list[Evidence]:
    """Straight comparison, or the crossed one (the query's last name as a first name,
    its first as a last) plus the log-probability of a swap, whichever weighs more."""
    first = _first_name(q.first_name, c.first_name, w)
    last = _last_name(q.last_name, c.last_name, w)
    swap = w.rules["name"]["swapped"]
    if first.weight + last.weight >= w.best_names + swap.weight:
        return [first, last]  # no crossing can weigh more
    cross_f = _first_name(q.last_name, c.first_name, w)
    cross_l = _last_name(q.first_name, c.last_name, w)
    crossed = cross_f.weight + cross_l.weight + swap.weight
    if min(cross_f.weight, cross_l.weight) > 0 and crossed > first.weight + last.weight:
        text = swap.text
        if (cross_f.code, cross_l.code) != ("exact", "exact"):
            text += f" ({cross_f.outcome}; {cross_l.outcome})"
        return [Evidence("name", f"name: {text}", round(crossed, 2), "swapped")]
    return [first, last]


def _digits8(d: date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def _dob_code(q: date, c: date) -> str:
    if q == c:
        return "exact"
    if (q.year, q.month, q.day) == (c.year, c.day, c.month):
        return "day_month_swapped"
    if (q.month, q.day) == (c.month, c.day) and abs(q.year - c.year) == 1:
        return "year_off_by_one"
    a, b = _digits8(q), _digits8(c)
    diffs = sum(x != y for x, y in zip(a, b, strict=True))
    if diffs == 1:
        return "one_digit"
    if (q.month, q.day) == (c.month, c.day) and a[:2] == b[:2] and a[2:4] == b[3] + b[2]:
        return "year_digits_swapped"  # 1979 / 1997
    return "two_digits" if diffs == 2 else "different"


def _date_of_birth(q: date | None, c: date | None, w: Weights = DEFAULT_WEIGHTS) -> Evidence:
    if q is None or c is None:
        return _ev("date_of_birth", "not_compared")
    return _ev("date_of_birth", _dob_code(q, c), None, w)


def _last4(p: Person) -> str | None:
    return p.ssn_digits[-4:] if p.ssn_digits else p.ssn_last4


def _ssn(q: Person, cand: Candidate, w: Weights = DEFAULT_WEIGHTS) -> Evidence:
    relation = cand.ssn_relation
    c = cand.person
    if relation is None and q.ssn_digits and c.ssn_digits:
        relation = ssn_relation(q.ssn_digits, c.ssn_digits)
    if relation is None:
        q4, c4 = _last4(q), _last4(c)
        if q4 and c4:
            relation = "last4_equal" if q4 == c4 else "different"
    return _ev("ssn", relation or "not_compared", None, w)


def _identifier(fld: str, q: str | None, c: str | None, w: Weights = DEFAULT_WEIGHTS
                ) -> Evidence:
    if not q or not c:
        return _ev(fld, "not_compared")
    return _ev(fld, "equal" if q == c else "different", None, w)


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
    prior_log2_odds: float | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
) -> Match:
    """Compare every field; the total weight is the sum of the shown (rounded) weights."""
    rest = _other_fields(query, candidate, weights)
    evidence = [*_names(query, candidate.person, weights), *rest]
    total = round(sum(e.weight for e in evidence), 2)
    prior = weights.prior_log2_odds if prior_log2_odds is None else prior_log2_odds
    p = probability_of(total, prior)
    band: Band | None = (
        "strong" if p >= thresholds.strong else "possible" if p >= thresholds.possible
        else "weak" if p >= thresholds.weak else None
    )
    codes = {e.field: e.code for e in evidence}
    if band in (None, "weak") and any(codes.get(f) == "equal" for f in UNIQUE_FIELDS):
        band = "possible"  # one SSN or IDOC number is one person's: staff must see it
    if band == "strong" and not _strong_is_exact(codes):
        band = "possible"
    return Match(candidate, total, p, band, evidence)


def _strong_is_exact(codes: dict[str, str]) -> bool:
    """What ``strong`` needs beyond its threshold: no field that says "another person".

    * Twins: same surname and birthday, SSNs a digit apart, other first names. The
      fields are not independent there, so the sum overstates it: staff decide.
    * An SSN on both sides that differs: the sum may still be high (names and date of
      birth agree: the SSN was typed or remembered wrong), and the review list shows
      it, but a decision without a person does not overrule an SSN.
    * A date of birth that differs beyond a slip, or another surname: staff decide.
    """
    ssn = codes.get("ssn")
    names_differ = "different" in (codes.get("first_name"), codes.get("last_name"))
    if ssn == "equal" or codes.get("idoc_number") == "equal":
        return not (names_differ and codes.get("date_of_birth") == "different")
    if ssn == "different":
        return False
    if ssn in ("one_digit", "transposed") and codes.get("first_name") not in (
        "exact", "nickname", None
    ):  # twins' SSNs are often a digit apart, and "Brian" / "Bryan" one letter
        return False
    if names_differ or codes.get("date_of_birth") == "different":
        return False
    return codes.get("name") != "swapped" or ssn in ("one_digit", "transposed", "last4_equal")


def _other_fields(
    query: Person, candidate: Candidate, w: Weights = DEFAULT_WEIGHTS
) -> list[Evidence]:
    c = candidate.person
    return [
        _date_of_birth(query.date_of_birth, c.date_of_birth, w),
        _ssn(query, candidate, w),
        _identifier("idoc_number", _idoc(query.idoc_number), _idoc(c.idoc_number), w),
        _identifier("email", _email(query.email), _email(c.email), w),
    ]


def _cannot_reach(
    query: Person, cand: Candidate, needed: float, w: Weights = DEFAULT_WEIGHTS
) -> bool:
    """True when even exact names could not lift the candidate to ``needed`` (and no
    SSN or IDOC number is equal): the names need not be compared at all."""
    rest = _other_fields(query, cand, w)
    if any(e.code == "equal" and e.field in UNIQUE_FIELDS for e in rest):
        return False
    return sum(e.weight for e in rest) + w.best_names + 0.05 < needed  # 0.05: rounding


def comparison_vector(query: Person, cand: Candidate) -> Vector:
    """The outcome of each compared field, names compared straight (for fitting the
    weights: EM counts outcomes, it does not weigh them)."""
    c = cand.person
    evs = [_first_name(query.first_name, c.first_name), _last_name(query.last_name, c.last_name),
           _date_of_birth(query.date_of_birth, c.date_of_birth), _ssn(query, cand)]
    return tuple((e.field, e.code) for e in evs if e.code != "not_compared")


def rank(
    query: Person,
    candidates: Iterable[Candidate],
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    limit: int = 5,
    weights: Weights = DEFAULT_WEIGHTS,
) -> list[Match]:
    """The best ``limit`` candidates at or above ``weak``, best first (ties: input order)."""
    needed = weight_for(thresholds.weak, weights.prior_log2_odds)
    seen: set[UUID] = set()
    matches: list[Match] = []
    for cand in candidates:
        if cand.account_id in seen:
            continue
        seen.add(cand.account_id)
        if _cannot_reach(query, cand, needed, weights):
            continue
        m = score(query, cand, thresholds, weights=weights)
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
