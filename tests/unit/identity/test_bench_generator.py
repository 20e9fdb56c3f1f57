"""bench/match_accuracy.py's generator: each kind of error is what it says it is, the
SSNs follow the SSA's rules, and every query is one the match endpoint accepts."""

from __future__ import annotations

import importlib.util
import random
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest
from rapidfuzz.distance import DamerauLevenshtein

from identity.domain.accounts import normalize_ssn
from identity.domain.blocking import is_nickname, normalize_name
from identity.domain.matching import check_query
from identity.domain.records import Person as MatchPerson


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[3] / "bench" / "match_accuracy.py"
    spec = importlib.util.spec_from_file_location("bench_match_accuracy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _load()
PERSON = bench.Person(0, "M", "William", "Garcia-Lopez", date(1984, 3, 7), "219099999")


def _digits(d: date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def test_ssa_rules() -> None:
    for bad in ("000123456", "666123456", "900123456", "123004567", "123450000"):
        assert not bench.ssn_is_valid(bad)
    rng = random.Random(1)
    gen = bench.Generator(rng, bench.Names.load())
    ssns = [gen.ssn() for _ in range(2_000)]
    assert len(set(ssns)) == len(ssns)
    assert all(normalize_ssn(s) == s for s in ssns)  # what identity itself accepts
    slips = [bench.ssn_digit_slip(s, rng) for s in ssns[:300]]
    assert all(bench.ssn_is_valid(s) for s in slips)
    assert all(sum(a != b for a, b in zip(s, t, strict=True)) == 1
               for s, t in zip(ssns, slips, strict=False))


@pytest.mark.parametrize("seed", range(20))
def test_each_kind_is_what_it_claims(seed: int) -> None:
    rng = random.Random(seed)
    p = PERSON

    def one(kind: str) -> tuple[str | None, str | None, date | None, str | None]:
        out: tuple[str | None, str | None, date | None, str | None] = bench.apply_errors(
            p, [kind], rng)
        return out

    first, last, _, _ = one("first_typo")
    assert first and DamerauLevenshtein.distance(first.lower(), p.first_name.lower()) == 1
    assert last == p.last_name
    _, last, _, _ = one("last_typo")
    assert last and DamerauLevenshtein.distance(last.lower(), p.last_name.lower()) == 1
    first, _, _, _ = one("nickname")
    assert first and is_nickname(normalize_name(first).full, normalize_name(p.first_name).full)
    assert one("names_swapped")[:2] == (p.last_name, p.first_name)
    _, last, _, _ = one("compound_cut")
    assert last in ("Garcia", "Lopez")
    assert one("day_month_swapped")[2] == date(1984, 7, 3)
    dob = one("year_off_by_one")[2]
    assert dob in (date(1983, 3, 7), date(1985, 3, 7))
    dob = one("dob_digit")[2]
    assert dob is not None and dob not in (date(1984, 7, 3), date(1983, 3, 7), date(1985, 3, 7))
    assert sum(a != b for a, b in zip(_digits(dob), _digits(p.date_of_birth), strict=True)) == 1
    ssn = one("ssn_digit")[3]
    assert ssn and bench.ssn_is_valid(ssn)
    assert sum(a != b for a, b in zip(ssn, p.ssn, strict=True)) == 1
    ssn = one("ssn_transposed")[3]
    assert ssn and bench.ssn_is_valid(ssn) and sorted(ssn) == sorted(p.ssn) and ssn != p.ssn
    diffs = [i for i in range(9) if ssn[i] != p.ssn[i]]
    assert len(diffs) == 2 and diffs[1] == diffs[0] + 1
    assert one("missing_first")[0] is None and one("missing_last")[1] is None
    assert one("missing_dob")[2] is None
    assert bench.apply_errors(p, [], rng, has_ssn=False) == (
        p.first_name, p.last_name, p.date_of_birth, None)
    # a typo stays with its name when the names are swapped too
    first, last, _, _ = bench.apply_errors(p, ["first_typo", "names_swapped"], rng)
    assert last and DamerauLevenshtein.distance(last.lower(), "william") == 1
    assert first == p.last_name


def test_compound_parts() -> None:
    assert bench.compound_parts("De La Cruz") == ["Cruz"]
    assert bench.compound_parts("Garcia-Lopez") == ["Garcia", "Lopez"]
    assert bench.compound_parts("Van der Berg") == ["Berg"]
    assert bench.compound_parts("Smith") == []


def test_dataset_queries_are_labelled_and_valid() -> None:
    data = bench.make_dataset(2_000, 600, 200, seed=3)
    people = {p.key: p for p in data.people}
    assert len(people) == 2_000 and len(data.queries) == 800
    assert len({p.ssn for p in data.people}) == 2_000
    present = [q for q in data.queries if q.truth is not None]
    absent = [q for q in data.queries if q.truth is None]
    assert len(present) == 600 and len(absent) == 200
    assert {q.relation for q in absent} == {"", "sibling", "namesake"}
    assert not {q.ssn for q in absent if q.ssn} & {p.ssn for p in data.people}
    kinds = Counter(k for q in data.queries for k in q.kinds)
    assert 0.28 < kinds["ssn_missing"] / len(data.queries) < 0.39
    assert set(bench.KINDS) <= set(kinds)  # every kind is made
    for q in data.queries:
        groups = [bench.KINDS[k][0] for k in q.kinds if k != "ssn_missing"]
        assert len(groups) == len(set(groups)), q.kinds  # at most one error per field
        assert (q.ssn is None) == ("ssn_missing" in q.kinds)
        assert not ("missing_dob" in q.kinds and q.ssn is None)  # names alone: not made
        check_query(MatchPerson(q.first_name, q.last_name, q.date_of_birth, q.ssn))
        if q.truth is not None and not q.kinds:
            t = people[q.truth]
            assert (q.first_name, q.last_name, q.date_of_birth, q.ssn) == (
                t.first_name, t.last_name, t.date_of_birth, t.ssn)
