"""Blocking for person matching, as plain code: name normalisation, nicknames,
phonetic codes, the block keys accounts are indexed by and queries look up, and
the slips of an SSN.

* ``index_keys(first, last, dob)`` on an account gives the block keys to index
  (names' phonetic codes combined with parts of the date of birth); on a query,
  ``query_keys(first, last, dob)`` gives the keys to look up, names swapped and
  day/month swapped included. ``name_keys`` shows the phonetic codes behind them.
* ``dob_keys(d)``: the date and its day/month swap.
* ``ssn_slips(digits)``: the issuable one-digit substitutions and adjacent
  transpositions of the query's SSN, each with its relation. The use case hashes
  them with the SSN lookup key and looks them up with the exact digits in one
  indexed ``lookup = ANY($1)``. Full SSNs are never read back.

No I/O here.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from typing import Literal

import jellyfish
from nicknames import NickNamer

from shared.rules.ssn import ssn_issuable

SsnRelation = Literal["equal", "one_digit", "transposed", "last4_equal", "different"]

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
    * ``fym`` / ``fyd`` / ``lym`` / ``lyd``: one name, the year, and the month or the day
      (finds the other name misspelt, initial and all, with a slip in the day or month;
      broad for common names: looked up apart, capped, see ``birthday_query_keys``),
    * ``fyi`` / ``fmi``: the first name, the last initial, and the year or the month and
      day (finds a misspelt last name together with a slip in the date),
    * ``fl0``: both names, for an account with no date of birth (legacy imports),
    * ``fn``: both names, on every account: the broad block of a query without a date
      of birth, or with a date mangled beyond the other blocks (looked up apart, with a
      cap: see ``broad_query_keys``); ``lfi`` / ``fli``: one name and the other's
      initial (broad: looked up apart, capped),
    * ``fmd`` / ``lmd``: one name and the month and day (broad: looked up apart, capped;
      see ``birthday_query_keys``).

    A one-digit slip in the date of birth falls in the year or in the month and day,
    so ``fly`` or ``flm`` still meets it; a day/month swap is looked up explicitly.
    """
    firsts, lasts, pairs = _name_pairs(first, last)
    texts = [f"fl0:{p}" for p in pairs] if dob is None else []
    texts += [f"fn:{p}" for p in pairs]
    texts += _one_name_initial(firsts, lasts, _initial(first), _initial(last))
    if dob is not None:
        iso, md = dob.isoformat(), f"{dob.month}-{dob.day}"
        fi, li = _initial(first), _initial(last)
        texts += [f"fly:{p}:{dob.year}" for p in pairs]
        texts += [f"flm:{p}:{md}" for p in pairs]
        texts += [f"fd:{f}:{iso}" for f in firsts]
        texts += [f"ld:{la}:{iso}" for la in lasts]
        texts += [f"f1d:{fi}:{iso}"] if fi else []
        texts += [f"l1d:{li}:{iso}"] if li else []
        if fi:
            texts += [f"lyi:{la}:{fi}:{dob.year}" for la in lasts]
            texts += [f"lmi:{la}:{fi}:{md}" for la in lasts]
        if li:
            texts += [f"fyi:{f}:{li}:{dob.year}" for f in firsts]
            texts += [f"fmi:{f}:{li}:{md}" for f in firsts]
        texts += _one_name_date_parts(firsts, lasts, dob)
        texts += _one_name_birthday(firsts, lasts, dob)
    return sorted({_key(t) for t in texts})


def _one_name_birthday(firsts: frozenset[str] | set[str], lasts: frozenset[str] | set[str],
                       d: date) -> list[str]:
    """One name with the month and day (``fmd`` / ``lmd``): the other name misspelt,
    initial and all, with a slip in the year. Broad for common names: capped."""
    md = f"{d.month}-{d.day}"
    return [f"fmd:{f}:{md}" for f in firsts] + [f"lmd:{la}:{md}" for la in lasts]


def birthday_query_keys(first: str | None, last: str | None, dob: date | None) -> list[int]:
    """The blocks of one name with parts of the date (``fmd`` / ``lmd``, ``fym`` /
    ``fyd`` / ``lym`` / ``lyd``; names as entered and swapped, the date and its swaps),
    looked up apart with a cap like ``broad_query_keys``: at millions of accounts a
    common first name with a year and month is a block of about a hundred."""
    if dob is None:
        return []
    f1, l1, _ = _name_pairs(first, last)
    f2, l2, _ = _name_pairs(last, first)
    texts = {t for d in dob_keys(dob) for t in _one_name_birthday(f1 | f2, l1 | l2, d)}
    texts |= {t for d in dob_keys(dob) for t in _one_name_date_parts(f1 | f2, l1 | l2, d)}
    return sorted({_key(t) for t in texts})


def _one_name_date_parts(
    firsts: frozenset[str] | set[str], lasts: frozenset[str] | set[str], d: date
) -> list[str]:
    """One name with the year and the month, or the year and the day: finds the other
    name misspelt (even its initial) together with a slip in the day or the month."""
    out = [f"fym:{f}:{d.year}-{d.month}" for f in firsts]
    out += [f"fyd:{f}:{d.year}-{d.day}" for f in firsts]
    out += [f"lym:{la}:{d.year}-{d.month}" for la in lasts]
    out += [f"lyd:{la}:{d.year}-{d.day}" for la in lasts]
    return out


def _one_name_initial(
    firsts: frozenset[str], lasts: frozenset[str], fi: str, li: str
) -> list[str]:
    """One name's code and the other's initial (``lfi`` / ``fli``): a names-alone block
    that survives a typo in the other name."""
    out = [f"lfi:{la}:{fi}" for la in lasts] if fi else []
    return out + ([f"fli:{f}:{li}" for f in firsts] if li else [])


def broad_query_keys(first: str | None, last: str | None, dob: date | None = None
                     ) -> list[int]:
    """The names-alone blocks of a query, as entered and swapped: ``fn`` (both names'
    codes) and ``lfi`` / ``fli`` (one name and the other's initial, for a typo in the
    other). ``dob`` is not used: the date only sets the repository's cap.

    Broad for common names (thousands of John Smiths among millions): the repository
    looks these up apart from ``query_keys`` and takes a few rows of them at most, so
    a rare name pair finds its account from the names alone and a common one adds
    nothing but a bounded read (common names need another field)."""
    f1, l1, p1 = _name_pairs(first, last)
    f2, l2, p2 = _name_pairs(last, first)
    texts = {f"fn:{p}" for p in p1 | p2}
    texts |= set(_one_name_initial(f1, l1, _initial(first), _initial(last)))
    texts |= set(_one_name_initial(f2, l2, _initial(last), _initial(first)))
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
        # (first codes, last initial) as entered and crossed
        for li, fs in ((_initial(last), f1), (_initial(first), f2)):
            if li:
                texts |= {f"fyi:{f}:{li}:{d.year}" for f in fs for d in dates}
                texts |= {f"fmi:{f}:{li}:{d.month}-{d.day}" for f in fs for d in dates}
    return sorted({_key(t) for t in texts})


@lru_cache(maxsize=65_536)
def _initial(raw: str | None) -> str:
    return normalize_name(raw).full[:1] if raw else ""


def dob_keys(d: date) -> set[date]:
    """The date, its day/month swap and its year's last two digits swapped (1979 /
    1997), when those are valid, different dates.

    One-digit typos and a year off by one are too many dates to enumerate
    cheaply; such records are found through the name blocks instead.
    """
    keys = {d}
    if d.day <= 12 and d.day != d.month:
        keys.add(d.replace(month=d.day, day=d.month))
    y = f"{d.year:04d}"
    if y[2] != y[3]:
        with contextlib.suppress(ValueError):  # 29 February of a year that has none
            keys.add(d.replace(year=int(y[:2] + y[3] + y[2])))
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
