"""Benchmark: accuracy of identity's person matcher, side by side with Splink.

Generates synthetic people (US first names and surnames weighted by popularity,
hyphenated and compound surnames, twins and siblings, valid SSNs, some emails),
loads them into a fresh identity database through the bulk import, then makes
query copies of a sample with realistic errors (one-edit typos, nicknames,
swapped first and last names, day/month swaps, one-digit slips in the SSN and the
date of birth, year off by one, missing fields, compound surnames cut to one
part; and the classes of issue 16: an SSN that is another number altogether,
first and last swapped and misspelt, names only, a first name replaced by a
middle name or an unlisted nickname, a married surname, the year's digits
swapped or two digits of the date wrong (each with a name typo), a space inside
a name; a third of the queries without an SSN) plus queries for people who are
not in the database (new people, siblings and namesakes of people who are).

Weights (``--fit``): by default EM over the candidate pairs of a training set of
other corrupted copies (another seed), u from random pairs of accounts, name
frequencies from the accounts, as Splink trains on the records it links;
``accounts`` is what ``csc identity fit-matcher`` does; ``none`` the table.

Each query goes through ``identity.service.matcher.find`` in-process on the real
database. The same originals and queries are linked with Splink 4 (DuckDB, EM
training) on the same four fields. For both it prints, taking the top candidate
as the prediction when its band is ``possible`` or ``strong`` (a ``weak`` one is
shown to staff, not predicted; for Splink: p at its threshold, strong at 0.95,
weak down to 0.01): precision, recall and F1, the recall of the top five (any
band), the strong band's precision; then the same per kind of error.

    make bench-accuracy
    .venv/bin/python bench/match_accuracy.py [--people 20000] [--sample 5000] [--absent 1000]
        [--seed 7] [--errors 0.2,0.5,0.25,0.05] [--ssn-missing 0.333]
        [--splink-threshold 0.6] [--splink-names separate] [--no-splink] [--show-misses 0]
        [--fit training|accounts|none]

The mix of errors: a query has 0, 1, 2 or 3 errors (``--errors``, at most one per
field), and a third have no SSN on top. A query of two names alone (no SSN, no
date of birth) is its own kind, ``names_only``. A
query counts as a true positive when its top candidate is the person it copies;
a wrong top candidate, or a top candidate (possible or strong) for an absent person, is a false
positive; recall is over the queries of loaded people. Splink's threshold is
ours by default (match probability 0.6, identity's "possible"), and the best
of a sweep is shown beside it. Splink gets the names lower-cased with accents,
apostrophes and dots off, the date as YYYY-MM-DD and the SSN as nine digits.

Splink is a bench-only dependency (the ``bench`` dependency group).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import functools
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(ROOT))

# --- Names ------------------------------------------------------------------------

# Spanish surnames the generator joins two at a time ("Garcia-Lopez").
HISPANIC = (
    "Garcia", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Perez", "Sanchez",
    "Ramirez", "Torres", "Flores", "Rivera", "Gomez", "Diaz", "Cruz", "Reyes", "Morales",
    "Ortiz", "Gutierrez", "Chavez", "Ramos", "Ruiz", "Mendoza", "Castillo", "Jimenez",
    "Moreno", "Romero", "Herrera", "Medina", "Aguilar", "Vargas", "Castro", "Vasquez",
    "Alvarez", "Fernandez",
)


@dataclass(frozen=True)
class NameTable:
    """Names in popularity order with cumulative weights (about Zipf's law)."""

    names: tuple[str, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def ranked(cls, names: Sequence[str], exponent: float, offset: float) -> NameTable:
        weights = [1.0 / (rank + offset) ** exponent for rank in range(len(names))]
        return cls(tuple(names), tuple(itertools.accumulate(weights)))

    def pick(self, rng: random.Random) -> str:
        x = rng.random() * self.cumulative[-1]
        return self.names[bisect.bisect_right(self.cumulative, x)]


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@dataclass(frozen=True)
class Names:
    male: NameTable
    female: NameTable
    surnames: NameTable
    compound: tuple[str, ...]

    @classmethod
    def load(cls, data: Path = DATA) -> Names:
        firsts = [ln.split("\t") for ln in _lines(data / "us_first_names.txt")]
        surnames = _lines(data / "us_surnames.txt")
        return cls(
            male=NameTable.ranked([n for n, s in firsts if s == "M"], 1.0, 4),
            female=NameTable.ranked([n for n, s in firsts if s == "F"], 1.0, 4),
            surnames=NameTable.ranked([s for s in surnames if not s.startswith("*")], 0.9, 8),
            compound=tuple(s[1:] for s in surnames if s.startswith("*")),
        )


# --- People -----------------------------------------------------------------------

DOB_FIRST, DOB_LAST = date(1945, 1, 1), date(2006, 12, 31)


@dataclass(frozen=True)
class Person:
    """A synthetic person as loaded: ``key`` is their index (and username ``p<key>``)."""

    key: int
    sex: str
    first_name: str
    last_name: str
    date_of_birth: date
    ssn: str = field(repr=False)
    email: str | None = None
    relation: str = ""  # "twin" / "sibling" / "namesake" of another generated person

    def row(self) -> dict[str, str | None]:
        """The bulk import's columns, as strings."""
        return {
            "username": f"p{self.key:06d}", "first_name": self.first_name,
            "last_name": self.last_name, "date_of_birth": self.date_of_birth.isoformat(),
            "ssn": f"{self.ssn[:3]}-{self.ssn[3:5]}-{self.ssn[5:]}", "email": self.email,
        }


def ssn_is_valid(digits: str) -> bool:
    """SSA rules: nine digits, area not 000, 666 or 9xx, group not 00, serial not 0000."""
    return (
        len(digits) == 9 and digits.isdigit() and digits[:3] not in ("000", "666")
        and digits[0] != "9" and digits[3:5] != "00" and digits[5:] != "0000"
    )


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text.lower() if ch.isascii() and ch.isalpha())


class Generator:
    """People with unique SSNs and emails; relatives share a surname (twins a date of
    birth too, and consecutive SSN serials, as the SSA's enumeration at birth gives)."""

    def __init__(self, rng: random.Random, names: Names, *, email_share: float = 0.5) -> None:
        self.rng, self.names, self.email_share = rng, names, email_share
        self.ssns: set[str] = set()
        self.emails: set[str] = set()
        self.next_key = 0

    def _key(self) -> int:
        self.next_key += 1
        return self.next_key - 1

    def first_name(self, sex: str, other_than: str = "") -> str:
        table = self.names.male if sex == "M" else self.names.female
        while True:
            name = table.pick(self.rng)
            if name != other_than and not _related(name, other_than):
                return name

    def surname(self) -> str:
        x = self.rng.random()
        if x < 0.025:
            return self.rng.choice(self.names.compound)
        if x < 0.05:
            a, b = self.rng.sample(HISPANIC, 2)
            return f"{a}-{b}"
        return self.names.surnames.pick(self.rng)

    def dob(self) -> date:
        return DOB_FIRST + timedelta(days=self.rng.randrange((DOB_LAST - DOB_FIRST).days + 1))

    def ssn(self) -> str:
        while True:
            area = self.rng.randrange(1, 900)
            if area == 666:
                continue
            group, serial = self.rng.randrange(1, 100), self.rng.randrange(1, 10_000)
            digits = f"{area:03d}{group:02d}{serial:04d}"
            if digits not in self.ssns:
                self.ssns.add(digits)
                return digits

    def _email(self, first: str, last: str) -> str | None:
        if self.rng.random() >= self.email_share:
            return None
        for n in itertools.count():
            local = f"{_ascii(first)}.{_ascii(last)}{n or ''}"
            email = f"{local}@{self.rng.choice(('example.com', 'example.org', 'example.net'))}"
            if email not in self.emails:
                self.emails.add(email)
                return email
        raise AssertionError("unreachable")

    def person(self) -> Person:
        sex = self.rng.choice("MF")
        first, last = self.first_name(sex), self.surname()
        return Person(self._key(), sex, first, last, self.dob(), self.ssn(),
                      self._email(first, last))

    def sibling(self, of: Person) -> Person:
        sex = self.rng.choice("MF")
        first = self.first_name(sex, other_than=of.first_name)
        gap = self.rng.choice((-1, 1)) * self.rng.randrange(365, 365 * 12)
        dob = min(max(of.date_of_birth + timedelta(days=gap), DOB_FIRST), DOB_LAST)
        return Person(self._key(), sex, first, of.last_name, dob, self.ssn(),
                      self._email(first, of.last_name), "sibling")

    def twin(self, of: Person) -> Person:
        sex = self.rng.choice("MF")
        first = self.first_name(sex, other_than=of.first_name)
        ssn = None
        for step in (1, -1, 2, -2):
            serial = int(of.ssn[5:]) + step
            candidate = f"{of.ssn[:5]}{serial:04d}"
            if 0 < serial < 10_000 and candidate not in self.ssns and ssn_is_valid(candidate):
                ssn = candidate
                self.ssns.add(candidate)
                break
        return Person(self._key(), sex, first, of.last_name, of.date_of_birth,
                      ssn or self.ssn(), self._email(first, of.last_name), "twin")

    def namesake(self, of: Person) -> Person:
        """Another person of the same first and last name (the "John Smith" problem)."""
        return Person(self._key(), of.sex, of.first_name, of.last_name, self.dob(), self.ssn(),
                      self._email(of.first_name, of.last_name), "namesake")

    def population(self, n: int, *, twins: float = 0.01, siblings: float = 0.03) -> list[Person]:
        """``n`` people: mostly unrelated, ``twins`` of them in twin pairs, ``siblings``
        of them the brother or sister of an earlier one."""
        out: list[Person] = []
        while len(out) < n:
            x = self.rng.random()
            if out and x < twins / 2 and len(out) + 2 <= n:
                p = self.person()
                out += [p, self.twin(p)]
            elif out and x < twins / 2 + siblings:
                out.append(self.sibling(self.rng.choice(out)))
            else:
                out.append(self.person())
        return out

    def absent(self, n: int, present: Sequence[Person]) -> list[Person]:
        """People who are not loaded: half new, a quarter siblings of loaded people,
        a quarter namesakes of loaded people."""
        out = []
        for i in range(n):
            kind = i % 4
            if kind < 2:
                out.append(self.person())
            elif kind == 2:
                out.append(self.sibling(self.rng.choice(present)))
            else:
                out.append(self.namesake(self.rng.choice(present)))
        return out


# --- Errors -----------------------------------------------------------------------


@functools.cache
def _nicknamer() -> Any:
    from nicknames import NickNamer

    return NickNamer()


def nicknames_of(first: str) -> list[str]:
    """Nicknames and canonical forms of a first name, from the ``nicknames`` package."""
    nn, key = _nicknamer(), first.lower()
    return sorted({n.capitalize() for n in nn.nicknames_of(key) | nn.canonicals_of(key)} - {first})


def _related(a: str, b: str) -> bool:
    if not a or not b:
        return False
    return b.capitalize() in nicknames_of(a) or a.capitalize() in nicknames_of(b)


_KEYBOARD = {  # QWERTY neighbours, for substitution typos
    "a": "qwsz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc",
    "g": "ftyhbv", "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop",
    "m": "njk", "n": "bhjm", "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz",
    "t": "rfgy", "u": "yhji", "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}


def typo(name: str, rng: random.Random) -> str:
    """One edit (substitution by a keyboard neighbour, deletion, insertion, or swap of
    two adjacent letters) at a letter position, keeping the original's case style."""
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    for _ in range(50):
        i = rng.choice(letters)
        op = rng.choice(("sub", "del", "ins", "swap"))
        lower = name[i].lower()
        if op == "sub":
            new = rng.choice(_KEYBOARD.get(lower, "aeiou"))
            out = name[:i] + (new.upper() if name[i].isupper() else new) + name[i + 1:]
        elif op == "del" and len(letters) > 3:
            out = name[:i] + name[i + 1:]
        elif op == "ins":
            new = rng.choice(_KEYBOARD.get(lower, "aeiou") + lower)
            out = name[:i + 1] + new + name[i + 1:]
        elif op == "swap" and i + 1 < len(name) and name[i + 1].isalpha():
            a, b = name[i], name[i + 1]
            if a.lower() == b.lower():
                continue
            if i == 0:  # keep the capital in front
                a, b = a.lower(), b.upper()
            out = name[:i] + b + a + name[i + 2:]
        else:
            continue
        if out.lower() != name.lower():
            return out
    raise ValueError("no typo found")


_PARTICLES = {"de", "del", "la", "las", "los", "da", "dos", "van", "der", "von", "le", "san"}


def compound_parts(surname: str) -> list[str]:
    """The parts a compound surname may be cut to: each side of a hyphen, or the
    last word after particles ("De La Cruz" -> "Cruz")."""
    if "-" in surname:
        return [p for p in surname.split("-") if p]
    words = surname.split()
    if len(words) > 1:
        core = [w for w in words if w.lower() not in _PARTICLES]
        return core[-1:] if core else []
    return []


DOB_OLDEST, DOB_NEWEST = date(1930, 1, 1), date(2010, 12, 31)  # what a slip may give


def _valid_date(y: int, m: int, d: int) -> date | None:
    try:
        out = date(y, m, d)
    except ValueError:
        return None
    return out if DOB_OLDEST <= out <= DOB_NEWEST else None


def dob_digit_slip(d: date, rng: random.Random) -> date:
    """One digit of YYYYMMDD changed, giving a valid date other than the day/month swap
    or the year off by one (those are kinds of their own). The century is not mistyped."""
    digits = f"{d.year:04d}{d.month:02d}{d.day:02d}"
    swapped = _valid_date(d.year, d.day, d.month)
    options = []
    for i in range(2, 8):
        for r in "0123456789":
            if r == digits[i]:
                continue
            s = digits[:i] + r + digits[i + 1:]
            new = _valid_date(int(s[:4]), int(s[4:6]), int(s[6:]))
            if new is None or new == swapped:
                continue
            if (new.month, new.day) == (d.month, d.day) and abs(new.year - d.year) == 1:
                continue
            options.append(new)
    return rng.choice(options)


def ssn_digit_slip(ssn: str, rng: random.Random) -> str:
    """One digit changed, still a number the SSA issues (staff would get a 422 otherwise)."""
    while True:
        i, r = rng.randrange(9), rng.choice("0123456789")
        out = ssn[:i] + r + ssn[i + 1:]
        if out != ssn and ssn_is_valid(out):
            return out


def ssn_transposition(ssn: str, rng: random.Random) -> str | None:
    options = [ssn[:i] + ssn[i + 1] + ssn[i] + ssn[i + 2:] for i in range(8)]
    options = [o for o in options if o != ssn and ssn_is_valid(o)]
    return rng.choice(options) if options else None


@dataclass(frozen=True)
class Query:
    """A record to look up: ``truth`` is the key of the person it is a copy of, None when
    that person is not in the database. ``kinds`` names every error made in it."""

    qid: int
    truth: int | None
    first_name: str | None
    last_name: str | None
    date_of_birth: date | None
    ssn: str | None = field(repr=False)
    kinds: tuple[str, ...] = ()
    relation: str = ""


# kind -> (group, weight): at most one error per group in a query, and at most one
# field left empty.
KINDS: dict[str, tuple[str, float]] = {
    "first_typo": ("first", 1.0),
    "nickname": ("first", 1.0),
    "missing_first": ("first", 0.3),
    "last_typo": ("last", 1.0),
    "compound_cut": ("last", 15.0),  # only compound surnames have it: weighed up
    "missing_last": ("last", 0.3),
    "names_swapped": ("order", 0.5),
    "day_month_swapped": ("dob", 0.7),
    "dob_digit": ("dob", 1.0),
    "year_off_by_one": ("dob", 0.6),
    "missing_dob": ("dob", 0.3),
    "ssn_digit": ("ssn", 0.8),
    "ssn_transposed": ("ssn", 0.3),
    # The classes of issue 16 (misses of the matcher before it): each alone or with
    # other errors, like every kind.
    "ssn_other": ("ssn", 0.4),  # a different number altogether (typed or remembered)
    "swapped_typo": ("order", 0.4),  # first and last swapped, and one of them misspelt
    "names_only": ("dob", 0.5),  # no date of birth and no SSN: the two names alone
    "first_other": ("first", 0.5),  # a middle name or a nickname not in the list
    "last_married": ("last", 0.5),  # another surname altogether (marriage)
    "year_digits_swapped": ("dob", 0.4),  # 1979 <-> 1997, and a name misspelt
    "dob_mangled": ("dob", 0.4),  # two digits of the date wrong, and a name misspelt
    "name_space": ("space", 0.4),  # a space inside a name ("Laur a")
}
# The kinds that need a query without an SSN.
NO_SSN_KINDS = frozenset({"names_only"})
# How many errors a query has (besides a missing SSN): 0, 1, 2, 3.
ERROR_COUNTS = (0.20, 0.50, 0.25, 0.05)
SSN_MISSING = 1 / 3


def applicable(kind: str, p: Person, has_ssn: bool) -> bool:
    d = p.date_of_birth
    if kind == "nickname":
        return bool(nicknames_of(p.first_name))
    if kind == "compound_cut":
        return bool(compound_parts(p.last_name))
    if kind == "day_month_swapped":
        return d.day <= 12 and d.day != d.month
    if kind == "year_off_by_one":
        return (d.month, d.day) != (2, 29)
    if kind == "ssn_transposed":
        return has_ssn and ssn_transposition(p.ssn, random.Random(0)) is not None
    if kind in ("ssn_digit", "ssn_other"):
        return has_ssn
    if kind in NO_SSN_KINDS:
        return not has_ssn
    if kind == "year_digits_swapped":
        return _year_swapped(d) is not None
    if kind == "name_space":
        return len(p.first_name) >= 4 or len(p.last_name) >= 4
    if kind == "missing_dob":
        # Without SSN or DOB only two names are left: too little to tell one person
        # among millions, and the matcher answers nothing by design (names alone stay
        # below "possible"). Such a query measures nothing, so it is not made.
        return has_ssn
    return True  # a missing first or last name leaves two of the three fields


def _year_swapped(d: date) -> date | None:
    """The date with the year's last two digits swapped (1979 -> 1997), if valid."""
    y = f"{d.year:04d}"
    if y[2] == y[3]:
        return None
    return _valid_date(int(y[:2] + y[3] + y[2]), d.month, d.day)


def dob_mangled(d: date, rng: random.Random) -> date:
    """Two digits of YYYYMMDD changed (not the century): a date mangled beyond a slip."""
    digits = f"{d.year:04d}{d.month:02d}{d.day:02d}"
    for _ in range(200):
        i, j = rng.sample(range(2, 8), 2)
        s = list(digits)
        s[i], s[j] = rng.choice("0123456789"), rng.choice("0123456789")
        t = "".join(s)
        new = _valid_date(int(t[:4]), int(t[4:6]), int(t[6:]))
        if new is not None and sum(a != b for a, b in zip(t, digits, strict=True)) == 2:
            return new
    return dob_digit_slip(d, rng)


def other_first_name(p: Person, rng: random.Random, names: Names | None = None) -> str:
    """Another first name of the same sex, not a listed nickname of the first."""
    names = names or _names()
    table = names.male if p.sex == "M" else names.female
    while True:
        name = table.pick(rng)
        if name != p.first_name and not _related(name, p.first_name):
            return name


def other_surname(p: Person, rng: random.Random) -> str:
    while True:
        name = _names().surnames.pick(rng)
        if name != p.last_name:
            return name


@functools.cache
def _names() -> Names:
    return Names.load()


def with_space(name: str, rng: random.Random) -> str:
    """A space typed inside a name, not at either end ("Laura" -> "Laur a")."""
    i = rng.randrange(1, len(name))
    return name[:i] + " " + name[i:]


def _typo_one(first: str | None, last: str | None, rng: random.Random
              ) -> tuple[str | None, str | None]:
    if first and (not last or rng.random() < 0.5):
        return typo(first, rng), last
    return first, typo(last, rng) if last else last


def _blanks(kind: str) -> bool:
    """A kind that leaves a field empty: at most one of them in a query."""
    return kind.startswith("missing") or kind == "names_only"


# A name replaced (or left out) leaves the date of birth and the other name to find the
# person by: a query that loses a second of the three, or has them all wrong at once,
# describes nobody in particular and is not made.
_NAME_REPLACED = frozenset({"first_other", "last_married", "missing_first", "missing_last"})
_HEAVY = _NAME_REPLACED | {"names_only", "missing_dob"}
_DOB_ERRORS = frozenset({"day_month_swapped", "dob_digit", "year_off_by_one",
                         "year_digits_swapped", "dob_mangled"})


def _compatible(a: str, b: str) -> bool:
    if a in _HEAVY and b in _HEAVY:
        return False
    for x, y in ((a, b), (b, a)):
        if x in ("first_other", "last_married") and (
            y in _DOB_ERRORS or y in ("names_swapped", "swapped_typo", "name_space")
            or y in ("first_typo", "last_typo", "nickname", "compound_cut")
        ):
            return False
    return True


def choose_kinds(
    p: Person, rng: random.Random, has_ssn: bool, counts: Sequence[float] = ERROR_COUNTS
) -> list[str]:
    """How many errors (drawn from ``counts``) and which (weighed by ``KINDS``)."""
    wanted = rng.choices(range(len(counts)), weights=counts)[0]
    chosen: list[str] = []
    pool = [k for k in KINDS if applicable(k, p, has_ssn)]
    while len(chosen) < wanted:
        groups = {KINDS[c][0] for c in chosen}
        blanked = any(_blanks(c) for c in chosen)
        pool = [k for k in pool if KINDS[k][0] not in groups and not (blanked and _blanks(k))
                and all(_compatible(c, k) for c in chosen)]
        if not pool:
            break
        chosen.append(rng.choices(pool, weights=[KINDS[k][1] for k in pool])[0])
    return sorted(chosen)


def apply_errors(
    p: Person, kinds: Sequence[str], rng: random.Random, *, has_ssn: bool = True
) -> tuple[str | None, str | None, date | None, str | None]:
    """(first name, last name, date of birth, SSN) of ``p`` with ``kinds`` made in them.

    Field errors first, then the swap (a typo stays with its name), then a field left
    empty (``missing_first``: the query's first-name box is empty, whatever went in it).
    """
    first: str | None = p.first_name
    last: str | None = p.last_name
    dob: date | None = p.date_of_birth
    ssn: str | None = p.ssn if has_ssn else None
    def order(k: str) -> int:  # field errors, then swaps, then blanks
        return (k.startswith("missing") or k == "names_only") * 2 + (
            k in ("names_swapped", "swapped_typo"))

    for kind in sorted(kinds, key=order):
        if kind == "first_typo" and first:
            first = typo(first, rng)
        elif kind == "nickname":
            first = rng.choice(nicknames_of(p.first_name))
        elif kind == "last_typo" and last:
            last = typo(last, rng)
        elif kind == "compound_cut":
            last = rng.choice(compound_parts(p.last_name))
        elif kind == "names_swapped":
            first, last = last, first
        elif kind == "day_month_swapped" and dob:
            dob = dob.replace(month=dob.day, day=dob.month)
        elif kind == "dob_digit" and dob:
            dob = dob_digit_slip(dob, rng)
        elif kind == "year_off_by_one" and dob:
            step = rng.choice((-1, 1))
            dob = dob.replace(year=dob.year + (step if dob.year + step <= 2010 else -1))
        elif kind == "ssn_digit" and ssn:
            ssn = ssn_digit_slip(ssn, rng)
        elif kind == "ssn_transposed" and ssn:
            ssn = ssn_transposition(ssn, rng)
        elif kind == "ssn_other" and ssn:
            while (other := Generator(rng, _names()).ssn()) == p.ssn:
                pass
            ssn = other
        elif kind == "swapped_typo":
            first, last = _typo_one(first, last, rng)
            first, last = last, first
        elif kind == "names_only":
            dob, ssn = None, None
        elif kind == "first_other":
            first = other_first_name(p, rng)
        elif kind == "last_married":
            last = other_surname(p, rng)
        elif kind == "year_digits_swapped" and dob:
            dob = _year_swapped(dob) or dob
            first, last = _typo_one(first, last, rng)
        elif kind == "dob_mangled" and dob:
            dob = dob_mangled(dob, rng)
            first, last = _typo_one(first, last, rng)
        elif kind == "name_space":
            if first and len(first) >= 4 and (not last or len(last) < 4 or rng.random() < 0.5):
                first = with_space(first, rng)
            elif last and len(last) >= 4:
                last = with_space(last, rng)
        elif kind == "missing_first":
            first = None
        elif kind == "missing_last":
            last = None
        elif kind == "missing_dob":
            dob = None
        elif kind not in KINDS:
            raise ValueError(f"unknown kind of error {kind!r}")
    return first, last, dob, ssn


def corrupt(
    qid: int, p: Person, rng: random.Random, *, truth: int | None,
    counts: Sequence[float] = ERROR_COUNTS, ssn_missing: float = SSN_MISSING,
) -> Query:
    """A copy of ``p`` with errors drawn as ``KINDS``, ``counts`` and ``ssn_missing`` say."""
    has_ssn = rng.random() >= ssn_missing
    chosen = choose_kinds(p, rng, has_ssn, counts)
    first, last, dob, ssn = apply_errors(p, chosen, rng, has_ssn=has_ssn)
    kinds = tuple(chosen) + (() if has_ssn else ("ssn_missing",))
    return Query(qid, truth, first, last, dob, ssn, kinds, p.relation if truth is None else "")


@dataclass
class Dataset:
    people: list[Person]  # loaded
    queries: list[Query]  # copies of a sample of them, then of absent people


def make_dataset(
    n: int, sample: int, absent: int, seed: int, *,
    counts: Sequence[float] = ERROR_COUNTS, ssn_missing: float = SSN_MISSING,
    people: list[Person] | None = None,
) -> Dataset:
    """``n`` people and queries of them; with ``people``, queries of those (a training
    set of other corrupted copies)."""
    rng = random.Random(seed)
    gen = Generator(rng, Names.load())
    people = gen.population(n) if people is None else people
    outsiders = gen.absent(absent, people)
    qrng = random.Random(seed + 1)
    queries = [corrupt(i, p, qrng, truth=p.key, counts=counts, ssn_missing=ssn_missing)
               for i, p in enumerate(qrng.sample(people, min(sample, len(people))))]
    queries += [corrupt(len(queries) + i, p, qrng, truth=None, counts=counts,
                        ssn_missing=ssn_missing)
                for i, p in enumerate(outsiders)]
    return Dataset(people, queries)


def errors_made(q: Query) -> int:
    """The errors in a query, a missing SSN not counted."""
    return sum(k != "ssn_missing" for k in q.kinds)


# --- Metrics ----------------------------------------------------------------------


@dataclass
class Scores:
    """Top-candidate precision/recall/F1, recall of the top five, the strong band's
    precision, and the misses. The top candidate is the prediction when its band is
    ``possible`` or ``strong``; a ``weak`` one is shown to staff but predicts nothing."""

    name: str
    predictions: dict[int, list[int]]  # qid -> keys of the candidates shown, best first
    bands: dict[int, list[str]] = field(default_factory=dict)  # qid -> their bands
    tp: int = 0
    fp_wrong: int = 0  # a present person's top candidate is someone else
    fp_absent: int = 0  # an absent person got a candidate
    present: int = 0
    absent: int = 0
    top5: int = 0
    strong_right: int = 0  # strong candidates that are the person
    strong_wrong: int = 0  # strong candidates that are someone else
    by_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    misses: list[int] = field(default_factory=list)

    @property
    def precision(self) -> float:
        predicted = self.tp + self.fp_wrong + self.fp_absent
        return self.tp / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.present if self.present else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def recall5(self) -> float:
        return self.top5 / self.present if self.present else 1.0

    @property
    def strong_precision(self) -> float:
        n = self.strong_right + self.strong_wrong
        return self.strong_right / n if n else 1.0


def evaluate(name: str, queries: Sequence[Query], predictions: dict[int, list[int]],
             bands: dict[int, list[str]] | None = None) -> Scores:
    bands = bands if bands is not None else {}
    s = Scores(name, predictions, bands)
    for q in queries:
        shown = predictions.get(q.qid, [])[:5]
        shown_bands = bands.get(q.qid) or ["possible"] * len(shown)
        top = shown[0] if shown and shown_bands[0] != "weak" else None
        for key, band in zip(shown, shown_bands, strict=False):
            if band == "strong":
                if key == q.truth:
                    s.strong_right += 1
                else:
                    s.strong_wrong += 1
        kinds = q.kinds or ("no_error",)
        if q.truth is None:
            s.absent += 1
            if top is not None:
                s.fp_absent += 1
                s.misses.append(q.qid)
            for k in (f"absent_{q.relation or 'new'}",):
                s.by_kind[k][0] += top is None
                s.by_kind[k][1] += 1
            continue
        s.present += 1
        hit = top == q.truth
        s.tp += hit
        s.top5 += q.truth in shown
        if top is not None and not hit:
            s.fp_wrong += 1
        if not hit:
            s.misses.append(q.qid)
        for k in (*kinds, f"{errors_made(q)}_errors"):
            s.by_kind[k][0] += hit
            s.by_kind[k][1] += 1
    return s


# --- Our matcher --------------------------------------------------------------------


@dataclass
class OurRun:
    predictions: dict[int, list[int]]
    bands: dict[int, list[str]]
    import_seconds: float
    imported: int
    query_seconds: float
    latencies_ms: list[float]
    # qid -> the true account's total weight when it was among the blocked candidates
    truth_weight: dict[int, float]

    def blocked(self, queries: Sequence[Query]) -> float:
        present = [q for q in queries if q.truth is not None]
        return sum(q.qid in self.truth_weight for q in present) / max(1, len(present))


async def fit_for_bench(conn: Any, pool: Any, matcher: Any, data: Dataset, how: str,
                        seed: int, key_of: dict[Any, int]) -> Any:
    """Weights for the run: the table (``none``), ``accounts`` (what ``csc identity
    fit-matcher`` does: EM over the accounts' own candidate pairs; the bench's database
    has no duplicates, so EM finds little to learn from), or ``training``: EM over the
    candidate pairs of a training set of corrupted records made with another seed (not
    the queries measured), u from random pairs of accounts, name frequencies from all
    accounts, as Splink trains on the records it links."""
    from identity.domain.matching_weights import fit_weights
    from identity.service import matching as matches

    if how == "none":
        return None
    if how == "accounts":
        return await matches.fit_from_accounts(pool, matcher, sample=3_000, seed=seed)
    train = make_dataset(len(data.people), 3_000, 0, seed, people=data.people)
    from identity.domain.records import Person as MatchPerson

    people = [(MatchPerson(q.first_name, q.last_name, q.date_of_birth, q.ssn), ())
              for q in train.queries]
    cand = await matches.candidate_vectors(conn, matcher, people)
    sample = random.Random(seed).sample(data.people, min(5_000, len(data.people)))
    randoms = matches.random_vectors(
        [MatchPerson(p.first_name, p.last_name, p.date_of_birth, p.ssn) for p in sample],
        200_000, random.Random(seed))
    fc, lc = await matches.normalised_name_counts(conn)
    return fit_weights(cand, randoms, fc, lc, len(key_of), fitted_at="bench")


def print_weights(weights: Any) -> None:
    if weights is None:
        print("weights: the table in identity/matching_weights.py (not fitted)")
        return
    f = weights.fitted or {}
    print(f"weights fitted: {f.get('candidate_pairs')} candidate pairs, {f.get('random_pairs')}"
          f" random pairs, lambda {float(f.get('lambda', 0)):.4f}")
    for fld in ("first_name", "last_name", "date_of_birth", "ssn"):
        print(f"  {fld:<14} " + ", ".join(
            f"{c} m={r.m:.3f} u={r.u:.2g} w={r.weight:+.1f}"
            for c, r in weights.rules[fld].items()))


async def run_ours(dsn: str, data: Dataset, fit: str = "none", seed: int = 7) -> OurRun:
    from identity.app import SPEC
    from identity.deps import Deps
    from identity.domain.matching import check_query, score
    from identity.domain.records import Person as MatchPerson
    from identity.service import matcher as matcher_svc
    from identity.service.imports import import_customers
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool
    from shared.servicekit.runtime import migrate_database

    await migrate_database(SPEC, dsn)
    settings = IdentitySettings()
    pool = await create_pool(dsn)
    try:
        t0 = time.perf_counter()
        summary = await import_customers(
            pool, Deps.from_settings(settings),
            ((i + 2, p.row()) for i, p in enumerate(data.people)))
        import_seconds = time.perf_counter() - t0
        if summary.rejected:
            raise SystemExit(f"import rejected {len(summary.rejected)} rows: "
                             f"{summary.rejected[:3]}")
        async with pool.acquire() as conn:
            # What autovacuum does within a minute of a large import: statistics, and the
            # GIN index's pending list merged (else every lookup scans that list).
            await conn.execute("VACUUM (ANALYZE) customers")
            rows = await conn.fetch("SELECT id, username FROM customers")
            key_of = {r["id"]: int(r["username"][1:]) for r in rows}
            matcher = matcher_svc.Matcher.from_settings(settings)
            t_fit = time.perf_counter()
            weights = await fit_for_bench(conn, pool, matcher, data, fit, seed + 100, key_of)
            if weights is not None:
                print(f"fit ({fit}) in {time.perf_counter() - t_fit:.1f} s")
            print_weights(weights)
            matcher = matcher_svc.Matcher(matcher.vault, matcher.thresholds, weights)
            predictions: dict[int, list[int]] = {}
            bands: dict[int, list[str]] = {}
            latencies: list[float] = []
            truth_weight: dict[int, float] = {}
            t1 = time.perf_counter()
            for q in data.queries:
                person = MatchPerson(q.first_name, q.last_name, q.date_of_birth, q.ssn)
                check_query(person)  # what POST /v1/matches asks of a query
                t = time.perf_counter()
                found = await matcher_svc.find(conn, matcher, person)
                latencies.append((time.perf_counter() - t) * 1000)
                predictions[q.qid] = [key_of[m.candidate.account_id] for m in found]
                bands[q.qid] = [m.band or "possible" for m in found]
            query_seconds = time.perf_counter() - t1
            # Blocking recall, apart from the timing: was the true account a candidate?
            for q in data.queries:
                if q.truth is None:
                    continue
                person = MatchPerson(q.first_name, q.last_name, q.date_of_birth, q.ssn)
                for c in await matcher_svc.candidates_for(conn, matcher, person):
                    if key_of[c.account_id] == q.truth:
                        truth_weight[q.qid] = score(person, c, matcher.thresholds).total_weight
    finally:
        await pool.close()
    return OurRun(predictions, bands, import_seconds, summary.imported, query_seconds, latencies,
                  truth_weight)


# --- Splink -------------------------------------------------------------------------


def _clean(name: str | None) -> str | None:
    """Splink's usual preparation: lower case, accents, apostrophes and dots off."""
    if not name:
        return None
    text = unicodedata.normalize("NFKD", name).lower()
    text = "".join(ch for ch in text if not unicodedata.combining(ch) and ch not in "'.")
    return " ".join(text.split()) or None


@dataclass
class SplinkRun:
    pairs: list[tuple[int, int, float, float]]  # qid, key, match_probability, match_weight
    seconds: float
    compared: int
    lam: float


def run_splink(data: Dataset, names: str = "separate") -> SplinkRun:
    """``names``: "separate" (a Jaro–Winkler comparison for each name, with term
    frequencies) or "together" (Splink's forename-surname comparison, which knows a
    swap)."""
    import logging

    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    originals = pd.DataFrame({
        "unique_id": [p.key for p in data.people],
        "first_name": [_clean(p.first_name) for p in data.people],
        "last_name": [_clean(p.last_name) for p in data.people],
        "dob": [p.date_of_birth.isoformat() for p in data.people],
        "ssn": [p.ssn for p in data.people],
    })
    queries = pd.DataFrame({
        "unique_id": [q.qid for q in data.queries],
        "first_name": [_clean(q.first_name) for q in data.queries],
        "last_name": [_clean(q.last_name) for q in data.queries],
        "dob": [q.date_of_birth.isoformat() if q.date_of_birth else None for q in data.queries],
        "ssn": [q.ssn for q in data.queries],
    })
    for frame in (originals, queries):
        frame["full_name"] = [f"{f} {la}" if f and la else None
                              for f, la in zip(frame["first_name"], frame["last_name"],
                                               strict=True)]
    name_comparisons = [
        cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
    ] if names == "separate" else [
        cl.ForenameSurnameComparison("first_name", "last_name",
                                     forename_surname_concat_col_name="full_name"),
    ]
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=[
            *name_comparisons,
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.DamerauLevenshteinAtThresholds("ssn", [1, 2]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("ssn"),
            block_on("dob"),
            block_on("first_name", "last_name"),
            block_on("last_name", "substr(dob, 1, 4)"),
            block_on("first_name", "substr(dob, 6, 5)"),
            "l.first_name = r.last_name and l.last_name = r.first_name",
        ],
    )
    linker = Linker([originals, queries], settings, db_api=DuckDBAPI(),
                    input_table_aliases=["originals", "queries"], set_up_basic_logging=False)
    train = linker.training
    train.estimate_probability_two_random_records_match(
        [block_on("ssn"), block_on("first_name", "last_name", "dob")], recall=0.7)
    train.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    train.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    train.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
    df = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
    seconds = time.perf_counter() - t0
    pairs = []
    for row in df.itertuples(index=False):
        if row.source_dataset_l == "queries":
            qid, key = row.unique_id_l, row.unique_id_r
        else:
            qid, key = row.unique_id_r, row.unique_id_l
        pairs.append((int(qid), int(key), float(row.match_probability), float(row.match_weight)))
    lam = float(linker._settings_obj._probability_two_random_records_match)
    return SplinkRun(pairs, seconds, len(df), lam)


def splink_predictions(pairs: Iterable[tuple[int, int, float, float]],
                       threshold: float) -> dict[int, list[int]]:
    """Per query, the originals at or above ``threshold``, best weight first."""
    return splink_ranked(pairs, threshold, threshold)[0]


SPLINK_STRONG = 0.95  # ours by default


def splink_ranked(
    pairs: Iterable[tuple[int, int, float, float]], threshold: float, listed: float = 0.01
) -> tuple[dict[int, list[int]], dict[int, list[str]]]:
    """Per query, the five best originals at or above ``listed`` (best weight first) and
    their bands: strong at ``SPLINK_STRONG``, possible at ``threshold``, weak below."""
    by_query: dict[int, list[tuple[float, int, float]]] = defaultdict(list)
    for qid, key, p, w in pairs:
        if p >= listed:
            by_query[qid].append((w, key, p))
    preds, bands = {}, {}
    for qid, c in by_query.items():
        best = sorted(c, key=lambda x: -x[0])[:5]
        preds[qid] = [k for _, k, _ in best]
        bands[qid] = ["strong" if p >= SPLINK_STRONG else "possible" if p >= threshold
                      else "weak" for _, _, p in best]
    return preds, bands


# --- Report -------------------------------------------------------------------------


def _row(s: Scores) -> str:
    return (f"{s.name:<28} {s.precision:>9.4f} {s.recall:>7.4f} {s.f1:>7.4f} {s.recall5:>8.4f}"
            f" {s.strong_precision:>8.4f} {s.strong_right + s.strong_wrong:>7}"
            f" {s.tp:>6} {s.fp_wrong:>8} {s.fp_absent:>9}")


def print_table(rows: Sequence[Scores]) -> None:
    print(f"{'':<28} {'precision':>9} {'recall':>7} {'F1':>7} {'recall@5':>8}"
          f" {'strong P':>8} {'strong':>7} {'TP':>6} {'FP wrong':>8} {'FP absent':>9}")
    for s in rows:
        print(_row(s))


def print_classes(rows: Sequence[Scores], queries: Sequence[Query]) -> None:
    """Per kind of error: precision and recall of the top candidate, recall of the top
    five, strong precision, for each system (queries of absent people included in the
    kind's precision)."""
    kinds = sorted({k for q in queries for k in q.kinds} | {"no_error"})
    print("\nby kind of error: top-1 precision / top-1 recall / top-5 recall / strong precision")
    print(f"{'kind':<20} {'queries':>7} " + " ".join(f"{s.name[:29]:>29}" for s in rows))
    for k in kinds:
        sub = [q for q in queries if k in q.kinds or (k == "no_error" and not q.kinds)]
        n = sum(q.truth is not None for q in sub)
        cells = []
        for s in rows:
            e = evaluate(s.name, sub, s.predictions, s.bands)
            cells.append(f"{e.precision:.3f} {e.recall:.3f} {e.recall5:.3f} "
                         f"{e.strong_precision:.3f}")
        print(f"{k:<20} {n:>7} " + " ".join(f"{c:>29}" for c in cells))


def print_kinds(rows: Sequence[Scores]) -> None:
    kinds = sorted({k for s in rows for k in s.by_kind}, key=lambda k: (k[0].isdigit(), k))
    print("\nby kind of error (recall of the top candidate; absent_*: share with no candidate)")
    print(f"{'kind':<22} {'queries':>7} " + " ".join(f"{s.name[:14]:>14}" for s in rows))
    for k in kinds:
        n = rows[0].by_kind[k][1]
        print(f"{k:<22} {n:>7} " + " ".join(
            f"{s.by_kind[k][0] / n if n else 0:>14.4f}" for s in rows))


def _mask(q: Query | Person) -> str:
    ssn = q.ssn
    return f"***-**-{ssn[5:]}" if ssn else "-"


def miss_reasons(s: Scores, data: Dataset, truth_weight: dict[int, float]) -> Counter[str]:
    """Why our top candidate was wrong: not among the blocked candidates, scored below
    ``possible``, outranked by another account, or a candidate for an absent person."""
    by_qid = {q.qid: q for q in data.queries}
    out: Counter[str] = Counter()
    for qid in s.misses:
        q = by_qid[qid]
        if q.truth is None:
            out["candidate for an absent person"] += 1
        elif qid not in truth_weight:
            out["true account not blocked"] += 1
        elif q.truth in s.predictions.get(qid, []):
            out["true account outranked"] += 1
        elif s.predictions.get(qid):
            out["true account below possible, another above"] += 1
        else:
            out["true account below possible"] += 1
    return out


def print_misses(
    s: Scores, data: Dataset, limit: int, truth_weight: dict[int, float] | None = None
) -> None:
    if not limit:
        return
    by_key = {p.key: p for p in data.people}
    by_qid = {q.qid: q for q in data.queries}
    print(f"\n{s.name}: first {limit} of {len(s.misses)} misses")
    for qid in s.misses[:limit]:
        q = by_qid[qid]
        t = by_key.get(q.truth) if q.truth is not None else None
        got = [by_key[k] for k in s.predictions.get(qid, [])[:2]]
        print(f"  query {q.first_name} {q.last_name} {q.date_of_birth} {_mask(q)}"
              f" [{', '.join(q.kinds) or 'no error'}{'; ' + q.relation if q.relation else ''}]")
        if t:
            w = "" if truth_weight is None else (
                f" weight {truth_weight[qid]:+.1f}" if qid in truth_weight else " not blocked")
            print(f"    truth {t.first_name} {t.last_name} {t.date_of_birth} {_mask(t)}{w}")
        for g in got:
            print(f"    got   {g.first_name} {g.last_name} {g.date_of_birth} {_mask(g)}"
                  f"{' (' + g.relation + ')' if g.relation else ''}")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--sample", type=int, default=5_000)
    parser.add_argument("--absent", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--errors", default=",".join(f"{x:g}" for x in ERROR_COUNTS),
                        help="shares of queries with 0, 1, 2, 3 errors (default %(default)s)")
    parser.add_argument("--ssn-missing", type=float, default=SSN_MISSING,
                        help="share of queries without an SSN (default 1/3)")
    parser.add_argument("--splink-threshold", type=float, default=0.6,
                        help="Splink's match probability threshold (default: ours, 'possible')")
    parser.add_argument("--splink-names", choices=("separate", "together"), default="separate",
                        help="a comparison per name, or Splink's forename-surname one")
    parser.add_argument("--no-splink", action="store_true")
    parser.add_argument("--fit", choices=("none", "training", "accounts"), default="training",
                        help="weights: the table, EM over a training set of corrupted records"
                        " (default), or EM over the accounts (fit-matcher)")
    parser.add_argument("--show-misses", type=int, default=0, metavar="N")
    args = parser.parse_args()

    t0 = time.perf_counter()
    counts = [float(x) for x in args.errors.split(",")]
    data = make_dataset(args.people, args.sample, args.absent, args.seed, counts=counts,
                        ssn_missing=args.ssn_missing)
    gen_seconds = time.perf_counter() - t0
    present = [q for q in data.queries if q.truth is not None]
    kinds = Counter(k for q in data.queries for k in q.kinds)
    print(f"{len(data.people):,} people loaded ({sum(p.relation == 'twin' for p in data.people)}"
          f" twin pairs, {sum(p.relation == 'sibling' for p in data.people)} siblings,"
          f" {sum(' ' in p.last_name or '-' in p.last_name for p in data.people)} compound"
          f" surnames, {sum(p.email is not None for p in data.people):,} with email);"
          f" {len(present):,} queries of loaded people,"
          f" {len(data.queries) - len(present):,} of absent people;"
          f" {kinds['ssn_missing']:,} queries without SSN; generated in {gen_seconds:.1f} s")
    made = Counter(errors_made(q) for q in data.queries)
    print("errors per query: " + ", ".join(
        f"{n}: {made[n] / len(data.queries):.0%}" for n in sorted(made)))

    from shared.devstack.processes import LocalPostgres, free_port

    with tempfile.TemporaryDirectory() as tmp:
        pg = LocalPostgres(Path(tmp) / "pg", free_port(), durable=False)
        pg.start()
        os.environ.update({
            "CSC_ENV": "test", "IDENTITY_DATABASE_URL": pg.dsn(),
            "IDENTITY_SSN_KEYS": f"k1:{_key()}", "IDENTITY_SSN_ACTIVE_KEY": "k1",
            "IDENTITY_SSN_HMAC_KEY": _key(), "IDENTITY_DATA_KEY": _key(),
            "CSC_LOG_LEVEL": "WARNING",
        })
        try:
            ours = asyncio.run(run_ours(pg.dsn(), data, args.fit, args.seed))
        finally:
            pg.stop()
    from identity.settings import IdentitySettings

    s = IdentitySettings()
    print(f"import: {ours.imported:,} rows in {ours.import_seconds:.1f} s"
          f" ({ours.imported / ours.import_seconds:,.0f} rows/s)")
    lat = ours.latencies_ms
    print(f"ours: {len(lat):,} queries in {ours.query_seconds:.1f} s, p50"
          f" {statistics.median(lat):.2f} ms, p95 {_pct(lat, 0.95):.2f} ms,"
          f" p99 {_pct(lat, 0.99):.2f} ms; thresholds possible {s.match_possible}"
          f" strong {s.match_strong}; true account among the blocked candidates for"
          f" {ours.blocked(data.queries):.4f} of the queries of loaded people")
    rows = [evaluate("ours (identity.matches)", data.queries, ours.predictions, ours.bands)]

    if not args.no_splink:
        sp = run_splink(data, args.splink_names)
        print(f"splink: trained and predicted in {sp.seconds:.1f} s, {sp.compared:,} pairs"
              f" at p >= 0.01, lambda {sp.lam:.2e}; threshold {args.splink_threshold}")
        rows.append(evaluate(f"splink p>={args.splink_threshold:g}", data.queries,
                             *splink_ranked(sp.pairs, args.splink_threshold)))
        best = max((evaluate(f"splink p>={t:g} (best F1)", data.queries,
                             *splink_ranked(sp.pairs, t))
                    for t in (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)),
                   key=lambda r: r.f1)
        rows.append(best)
    print(f"\nall {len(data.queries):,} queries (top candidate = the prediction)")
    print_table(rows)
    easy = [q for q in data.queries if errors_made(q) <= 1]
    print(f"\nthe {len(easy):,} queries with at most one error (a missing SSN not counted)")
    print_table([evaluate(r.name, easy, r.predictions, r.bands) for r in rows])
    print_classes(rows, data.queries)
    print_kinds(rows)
    reasons = miss_reasons(rows[0], data, ours.truth_weight)
    print("\nours, why the top candidate was wrong or missing: " + ", ".join(
        f"{k} {v}" for k, v in reasons.most_common()))
    print_misses(rows[0], data, args.show_misses, ours.truth_weight)
    if len(rows) > 1:
        print_misses(rows[1], data, args.show_misses)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
