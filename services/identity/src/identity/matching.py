"""Person matching as plain code: normalisation, blocking keys, Fellegi–Sunter scoring.

No I/O here. The repository retrieves candidates from cheap indexed blocks fed by
this module, then ``rank`` scores them field by field:

* ``index_keys(first, last, dob)`` on an account gives the block keys to index
  (names' phonetic codes combined with parts of the date of birth); on a query,
  ``query_keys(first, last, dob)`` gives the keys to look up, names swapped and
  day/month swapped included. ``name_keys`` shows the phonetic codes behind them.
* ``dob_keys(d)``: the date and its day/month swap.
* ``ssn_variants(digits)``: the 81 one-digit substitutions and the (up to 8)
  adjacent transpositions of the query's SSN. The repository hashes them with
  the SSN lookup key and looks them up with the exact digits in one indexed
  ``lookup = ANY($1)``; ``ssn_relation(query, hit)`` then names the candidate's
  ``Candidate.ssn_relation``. Full SSNs are never read back.

Weights, prior and their reasons live in ``identity.matching_weights``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from typing import Literal
from uuid import UUID

import jellyfish
from nicknames import NickNamer
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from identity.matching_weights import FIELD_LABELS, PRIOR_LOG2_ODDS, RULES, probability_of

SsnRelation = Literal["equal", "one_digit", "transposed", "last4_equal", "different"]
Band = Literal["strong", "possible"]

CLOSE_JARO_WINKLER = 0.92
# An exact SSN or IDOC number is proposed whatever the other fields say.
UNIQUE_FIELDS = frozenset({"ssn", "idoc_number"})
QUERY_REASON = (
    "give an SSN, an identifier (IDOC number or email),"
    " or two of first name, last name and date of birth"
)

# --- Normalisation and blocking keys ---------------------------------------------

# Letters NFKD does not decompose into a base letter plus marks.
_FOLD = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d"}
)
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015_.,/]+")
# Surname particles: kept in the full key, left out of the parts a person goes by.
_PARTICLE_WORDS = "de del della der den di da das do dos du la las le los van von y"
PARTICLES = frozenset(_PARTICLE_WORDS.split())


@dataclass(frozen=True, slots=True)
class NormalName:
    """``full``: letters only, run together; ``parts``: its words without particles."""

    full: str
    parts: tuple[str, ...]


@lru_cache(maxsize=65_536)
def normalize_name(raw: str) -> NormalName:
    """NFKD, accents off, case-folded, letters only; separators split the parts.

    ``"Garcia-Lopez"`` -> full ``"garcialopez"``, parts ``("garcia", "lopez")``;
    ``"De La Cruz"`` -> full ``"delacruz"``, parts ``("cruz",)``; ``"O'Brien"``
    -> ``"obrien"`` (an apostrophe joins, it does not separate).
    """
    text = unicodedata.normalize("NFKD", raw).casefold().translate(_FOLD)
    tokens = ["".join(ch for ch in chunk if ch.isalpha()) for chunk in _SEPARATORS.split(text)]
    tokens = [t for t in tokens if t]
    parts = tuple(t for t in tokens if t not in PARTICLES) or tuple(tokens)
    return NormalName("".join(tokens), parts)


_nicknamer = cache(NickNamer)  # reads the package's own table once, on first use


@cache
def _related_names(name: str) -> frozenset[str]:
    nn = _nicknamer()
    return frozenset(nn.nicknames_of(name) | nn.canonicals_of(name))


def is_nickname(a: str, b: str) -> bool:
    """True when one normalised first name is a nickname or canonical form of the other."""
    return b in _related_names(a) or a in _related_names(b)


def _code(name: str) -> str:
    return jellyfish.metaphone(name)[:6] if name else ""


@lru_cache(maxsize=65_536)
def _first_codes(raw: str) -> frozenset[str]:
    n = normalize_name(raw)
    names = {n.full, n.parts[0] if n.parts else "", *_nicknamer().canonicals_of(n.full)}
    return frozenset(c for c in map(_code, names) if c)


@lru_cache(maxsize=65_536)
def _last_codes(raw: str) -> frozenset[str]:
    n = normalize_name(raw)
    return frozenset(c for c in map(_code, {n.full, *n.parts}) if c)


def name_keys(first: str | None, last: str | None, *, swapped: bool = False) -> set[str]:
    """Phonetic (Metaphone) keys to index an account by, or to look a query up with.

    ``fl:<first>:<last>`` for each pair (the selective block); ``f:<first>`` and
    ``l:<last>`` for one name alone (broad: combine them with another condition).
    First names also give the keys of their canonical forms in the nickname table
    (Bill gives William's, so Bill, Will and William meet); last names give the
    keys of their parts (Garcia-Lopez meets Garcia). ``swapped=True`` adds the
    keys of last-as-first and back: use it on queries only.
    """
    firsts = _first_codes(first) if first else set()
    lasts = _last_codes(last) if last else set()
    keys = {f"f:{f}" for f in firsts} | {f"l:{la}" for la in lasts}
    keys |= {f"fl:{f}:{la}" for f in firsts for la in lasts}
    if swapped:
        keys |= name_keys(last, first)
    return keys


@lru_cache(maxsize=262_144)
def _key(text: str) -> int:
    """A block key as a signed 64-bit integer: small in a GIN index, collisions harmless
    (a colliding account is one more candidate to score, nothing more)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@lru_cache(maxsize=65_536)
def _name_pairs(
    first: str | None, last: str | None
) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """First-name codes, last-name codes, and each pair as ``"F:L"``."""
    firsts = _first_codes(first) if first else frozenset()
    lasts = _last_codes(last) if last else frozenset()
    return firsts, lasts, frozenset(f"{f}:{la}" for f in firsts for la in lasts)


def index_keys(first: str | None, last: str | None, dob: date | None) -> list[int]:
    """The block keys an account is indexed by (a GIN index over ``customers.match_keys``).

    Every block is narrow enough to stay small at millions of accounts:

    * ``fly``: both names' phonetic codes and the birth year (finds a typo in day or month),
    * ``flm``: both names and the month and day (finds a typo in the year),
    * ``fd`` / ``ld``: one name and the whole date (finds a changed or misspelt other name),
    * ``f1d`` / ``l1d``: a name's initial and the whole date (finds both names misspelt),
    * ``lyi`` / ``lmi``: the last name, the first initial, and the year or the month and
      day (finds a misspelt first name together with a slip in the date),
    * ``fl0``: both names, for an account with no date of birth (legacy imports).

    A one-digit slip in the date of birth falls in the year or in the month and day,
    so ``fly`` or ``flm`` still meets it; a day/month swap is looked up explicitly.
    """
    firsts, lasts, pairs = _name_pairs(first, last)
    if dob is None:
        texts = [f"fl0:{p}" for p in pairs]
    else:
        iso, md = dob.isoformat(), f"{dob.month}-{dob.day}"
        fi, li = _initial(first), _initial(last)
        texts = [f"fly:{p}:{dob.year}" for p in pairs]
        texts += [f"flm:{p}:{md}" for p in pairs]
        texts += [f"fd:{f}:{iso}" for f in firsts]
        texts += [f"ld:{la}:{iso}" for la in lasts]
        texts += [f"f1d:{fi}:{iso}"] if fi else []
        texts += [f"l1d:{li}:{iso}"] if li else []
        if fi:
            texts += [f"lyi:{la}:{fi}:{dob.year}" for la in lasts]
            texts += [f"lmi:{la}:{fi}:{md}" for la in lasts]
    return sorted({_key(t) for t in texts})


def query_keys(first: str | None, last: str | None, dob: date | None) -> list[int]:
    """The keys to look a query up with: its own, its names swapped, its day/month swap."""
    f1, l1, p1 = _name_pairs(first, last)
    f2, l2, p2 = _name_pairs(last, first)  # entered the wrong way round
    firsts, lasts, pairs = f1 | f2, l1 | l2, p1 | p2
    texts = {f"fl0:{p}" for p in pairs}
    if dob is not None:
        dates = dob_keys(dob)
        # (first initial, last codes) as entered and crossed
        initials = {i for i in (_initial(first), _initial(last)) if i}
        cross = [(_initial(first), l1), (_initial(last), l2)]
        texts |= {f"fly:{p}:{d.year}" for p in pairs for d in dates}
        texts |= {f"flm:{p}:{d.month}-{d.day}" for p in pairs for d in dates}
        texts |= {f"fd:{f}:{d.isoformat()}" for f in firsts for d in dates}
        texts |= {f"ld:{la}:{d.isoformat()}" for la in lasts for d in dates}
        texts |= {f"f1d:{i}:{d.isoformat()}" for i in initials for d in dates}
        texts |= {f"l1d:{i}:{d.isoformat()}" for i in initials for d in dates}
        for fi, ls in cross:
            if fi:
                texts |= {f"lyi:{la}:{fi}:{d.year}" for la in ls for d in dates}
                texts |= {f"lmi:{la}:{fi}:{d.month}-{d.day}" for la in ls for d in dates}
    return sorted({_key(t) for t in texts})


@lru_cache(maxsize=65_536)
def _initial(raw: str | None) -> str:
    return normalize_name(raw).full[:1] if raw else ""


def dob_keys(d: date) -> set[date]:
    """The date and its day/month swap when that is a valid, different date.

    One-digit typos and a year off by one are too many dates to enumerate
    cheaply; such records are found through the name blocks instead.
    """
    keys = {d}
    if d.day <= 12 and d.day != d.month:
        keys.add(d.replace(month=d.day, day=d.month))
    return keys


def ssn_variants(digits: str) -> list[str]:
    """All 81 one-digit substitutions, then the adjacent transpositions (up to 8)."""
    if len(digits) != 9 or not digits.isdigit():
        raise ValueError("an SSN must be nine digits")
    out = [
        digits[:i] + r + digits[i + 1 :]
        for i, d in enumerate(digits)
        for r in "0123456789"
        if r != d
    ]
    out += [
        digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
        for i in range(8)
        if digits[i] != digits[i + 1]
    ]
    return out


def ssn_issuable(digits: str) -> bool:
    """Nine digits the SSA issues: area not 000, 666 or 9xx, group not 00, serial not 0000."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return not (area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000")


def ssn_slips(digits: str) -> list[tuple[str, SsnRelation]]:
    """The issuable one-digit slips and adjacent transpositions of an SSN, each with
    how it relates to the SSN."""
    variants = ssn_variants(digits)
    return [
        (v, "one_digit" if i < 81 else "transposed")
        for i, v in enumerate(variants)
        if ssn_issuable(v)
    ]


def ssn_relation(query_digits: str, other_digits: str) -> SsnRelation:
    """How two full SSNs relate: equal, one digit, adjacent transposition, or different.

    When both full SSNs are on file and neither the exact nor a variant lookup
    hit, the relation is "different" whatever the last four; "last4_equal" is
    for a record of which only the last four digits are known.
    """
    if query_digits == other_digits:
        return "equal"
    diffs = [i for i, (a, b) in enumerate(zip(query_digits, other_digits, strict=True)) if a != b]
    if len(diffs) == 1:
        return "one_digit"
    if (
        len(diffs) == 2
        and diffs[1] == diffs[0] + 1
        and query_digits[diffs[0]] == other_digits[diffs[1]]
        and query_digits[diffs[1]] == other_digits[diffs[0]]
    ):
        return "transposed"
    return "different"


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
    cross_f, cross_l = _first_name(q.last_name, c.first_name), _last_name(q.first_name, c.last_name)
    crossed = cross_f.weight + cross_l.weight + RULES["name"]["swapped"].weight
    if min(cross_f.weight, cross_l.weight) > 0 and crossed > first.weight + last.weight:
        text = RULES["name"]["swapped"].text
        if (cross_f.code, cross_l.code) != ("exact", "exact"):
            text += f" ({cross_f.outcome}; {cross_l.outcome})"
        return [Evidence("name", f"name: {text}", round(crossed, 2), "swapped")]
    return [first, last]


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
    c = candidate.person
    evidence = [
        *_names(query, c),
        _date_of_birth(query.date_of_birth, c.date_of_birth),
        _ssn(query, candidate),
        _identifier("idoc_number", _idoc(query.idoc_number), _idoc(c.idoc_number)),
        _identifier("email", _email(query.email), _email(c.email)),
    ]
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


def rank(
    query: Person,
    candidates: Iterable[Candidate],
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    limit: int = 5,
) -> list[Match]:
    """The best ``limit`` candidates at or above ``possible``, best first (ties: input order)."""
    seen: set[UUID] = set()
    matches: list[Match] = []
    for cand in candidates:
        if cand.account_id in seen:
            continue
        seen.add(cand.account_id)
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
