"""Person matching: normalisation, blocking keys, field outcomes, ranking, a synthetic check."""

from __future__ import annotations

import itertools
import random
import string
import uuid
from datetime import date, timedelta

import pytest

from identity.domain.blocking import (
    dob_keys,
    index_keys,
    is_nickname,
    name_keys,
    normalize_name,
    query_keys,
    ssn_relation,
    ssn_variants,
)
from identity.domain.matching import Match, Thresholds, check_query, rank, score
from identity.domain.matching_weights import PRIOR_LOG2_ODDS, RULES, probability_of
from identity.domain.records import Candidate, Person

DOB = date(1984, 3, 7)
BASE = Person(
    first_name="William",
    last_name="Garcia",
    date_of_birth=DOB,
    ssn_digits="123456789",
    idoc_number="A-10234",
    email="will@example.org",
)


def cand(person: Person, relation: str | None = None) -> Candidate:
    return Candidate(uuid.uuid4(), person, relation)  # type: ignore[arg-type]


def ev(query: Person, candidate: Person | Candidate, fld: str) -> tuple[str, str, float]:
    c = candidate if isinstance(candidate, Candidate) else cand(candidate)
    found = [e for e in score(query, c).evidence if e.field == fld]
    assert len(found) == 1, found
    return found[0].code, found[0].outcome, found[0].weight


# --- Normalisation and keys -------------------------------------------------------


def test_normalize_accents_case_and_separators() -> None:
    assert normalize_name("  José  ").full == "jose"
    assert normalize_name("MÜLLER").full == "muller"
    assert normalize_name("Straße").full == "strasse"
    assert normalize_name("O'Brien").full == "obrien"
    assert normalize_name("Søren").full == "soren"


def test_normalize_compound_surnames() -> None:
    g = normalize_name("Garcia-Lopez")
    assert g.full == "garcialopez" and g.parts == ("garcia", "lopez")
    d = normalize_name("De La Cruz")
    assert d.full == "delacruz" and d.parts == ("cruz",)
    assert normalize_name("de la  cruz") == normalize_name("De-La-Cruz")
    assert normalize_name("Garcia y Lopez").parts == ("garcia", "lopez")


def test_name_keys_meet_across_nickname_compound_and_swap() -> None:
    stored = name_keys("William", "Garcia-Lopez")
    assert "fl:WLM:KRX" in stored and "l:LPS" in stored
    assert name_keys("Bill", "Garcia") & stored  # nickname and compound part
    assert name_keys("Catherine", "Smith") & name_keys("Katherine", "Smyth")
    swapped_query = name_keys("Garcia", "William", swapped=True)
    assert any(k.startswith("fl:") for k in swapped_query & stored)
    assert not any(k.startswith("fl:") for k in name_keys("Garcia", "William") & stored)
    assert name_keys(None, "Garcia") == {"l:KRX"}
    assert name_keys(None, None) == set()


def test_dob_keys_date_swaps_and_year_digits() -> None:
    assert dob_keys(date(1984, 3, 7)) == {date(1984, 3, 7), date(1984, 7, 3), date(1948, 3, 7)}
    assert dob_keys(date(1984, 3, 25)) == {date(1984, 3, 25), date(1948, 3, 25)}
    assert dob_keys(date(1988, 5, 5)) == {date(1988, 5, 5)}
    # 1979 / 1997: the class of issue 16 "year digits swapped"
    assert date(1997, 11, 30) in dob_keys(date(1979, 11, 30))
    assert dob_keys(date(1996, 2, 29)) == {date(1996, 2, 29)}  # 1969 has no 29 February


def test_ssn_variants() -> None:
    v = ssn_variants("123456789")
    assert len(v) == 81 + 8 and len(set(v)) == 89 and "123456789" not in v
    assert "123456788" in v and "213456789" in v
    assert len(ssn_variants("113456789")) == 81 + 7  # equal neighbours do not transpose
    assert {ssn_relation("123456789", x) for x in v[:81]} == {"one_digit"}
    assert {ssn_relation("123456789", x) for x in v[81:]} == {"transposed"}
    with pytest.raises(ValueError, match="nine digits") as err:
        ssn_variants("12345678")
    assert "12345678" not in str(err.value)


def test_ssn_relation() -> None:
    assert ssn_relation("123456789", "123456789") == "equal"
    assert ssn_relation("123456789", "123450789") == "one_digit"
    assert ssn_relation("123456789", "123546789") == "transposed"
    assert ssn_relation("123456789", "923456780") == "different"
    assert ssn_relation("123456789", "999996789") == "different"  # last four alone: no


# --- Field outcomes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("other", "code", "positive"),
    [
        ("william", "exact", True),
        ("Bill", "nickname", True),
        ("Willam", "close", True),
        ("W.", "initial", True),
        ("Frank", "different", False),
        ("F", "different", False),
    ],
)
def test_first_name_outcomes(other: str, code: str, positive: bool) -> None:
    got, _, weight = ev(BASE, Person(first_name=other), "first_name")
    assert got == code
    assert (weight > 0) is positive


def test_nickname_evidence_text() -> None:
    assert is_nickname("bill", "william") and is_nickname("william", "bill")
    q = Person(first_name="Bill", last_name="Garcia")
    _, outcome, _ = ev(q, Person(first_name="William", last_name="Garcia"), "first_name")
    assert outcome == "first name: nickname Bill ↔ William"


@pytest.mark.parametrize(
    ("other", "code", "positive"),
    [
        ("GARCÍA", "exact", True),
        ("Garcia-Lopez", "compound", True),
        ("Lopez Garcia", "compound", True),
        ("Garcai", "close", True),
        ("Garza", "different", False),
    ],
)
def test_last_name_outcomes(other: str, code: str, positive: bool) -> None:
    got, _, weight = ev(BASE, Person(last_name=other), "last_name")
    assert got == code
    assert (weight > 0) is positive


def test_last_name_edit_distance_one_is_close() -> None:
    q = Person(last_name="Okonkwo")
    assert ev(q, Person(last_name="Okonkow"), "last_name")[0] == "close"
    assert ev(q, Person(last_name="Okenkwo"), "last_name")[0] == "close"


def test_swapped_names_replace_both_rows() -> None:
    swapped = Person(first_name="Garcia", last_name="William", date_of_birth=DOB)
    m = score(BASE, cand(swapped))
    fields = [e.field for e in m.evidence]
    assert "name" in fields and "first_name" not in fields and "last_name" not in fields
    name = next(e for e in m.evidence if e.field == "name")
    assert name.outcome == "name: first and last names swapped" and name.weight > 0
    nick = score(Person("Garsia", "Bill", DOB), cand(Person("William", "Garcia", DOB)))
    assert nick.evidence[0].outcome == (
        "name: first and last names swapped (first name: nickname Bill ↔ William; last name: close)"
    )
    assert nick.evidence[0].weight > 0 and nick.band == "possible"
    same = score(Person(first_name="James", last_name="James"), cand(Person("James", "James")))
    assert [e.code for e in same.evidence[:2]] == ["exact", "exact"]  # straight wins ties


@pytest.mark.parametrize(
    ("other", "code", "positive"),
    [
        (date(1984, 3, 7), "exact", True),
        (date(1984, 7, 3), "day_month_swapped", True),
        (date(1985, 3, 7), "year_off_by_one", True),
        (date(1983, 3, 7), "year_off_by_one", True),
        (date(1984, 3, 8), "one_digit", True),
        (date(1964, 3, 7), "one_digit", True),
        (date(1990, 11, 21), "different", False),
    ],
)
def test_date_of_birth_outcomes(other: date, code: str, positive: bool) -> None:
    got, outcome, weight = ev(BASE, Person(date_of_birth=other), "date_of_birth")
    assert got == code
    assert (weight > 0) is positive
    if code == "day_month_swapped":
        assert outcome == "date of birth: day and month swapped"


@pytest.mark.parametrize(
    ("relation", "positive"),
    [
        ("equal", True),
        ("one_digit", True),
        ("transposed", True),
        ("last4_equal", True),
        ("different", False),
    ],
)
def test_ssn_relation_from_repository(relation: str, positive: bool) -> None:
    c = cand(Person(ssn_last4="6789"), relation)
    code, _, weight = ev(BASE, c, "ssn")
    assert code == relation and (weight > 0) is positive


def test_ssn_derived_without_repository_relation() -> None:
    assert ev(BASE, Person(ssn_digits="123456780"), "ssn")[0] == "one_digit"
    assert ev(BASE, Person(ssn_digits="123456798"), "ssn")[0] == "transposed"
    _, outcome, _ = ev(BASE, Person(ssn_last4="6789"), "ssn")
    assert outcome == "SSN: last four agree"
    assert ev(BASE, Person(ssn_last4="0000"), "ssn")[0] == "different"
    assert ev(Person(ssn_last4="6789"), Person(ssn_last4="6789"), "ssn")[0] == "last4_equal"


def test_identifiers() -> None:
    assert ev(BASE, Person(idoc_number="a 10234"), "idoc_number")[0] == "equal"
    assert ev(BASE, Person(idoc_number="A-10235"), "idoc_number")[1:] == (
        "IDOC number: different",
        round(RULES["idoc_number"]["different"].weight, 2),
    )
    assert ev(BASE, Person(email=" WILL@example.org"), "email")[0] == "equal"
    assert ev(BASE, Person(email="bill@example.org"), "email")[2] < 0


def test_missing_fields_weigh_nothing() -> None:
    m = score(BASE, cand(Person()))
    assert m.total_weight == 0 and m.band is None
    assert len(m.evidence) == 6
    assert all(e.code == "not_compared" and e.weight == 0 for e in m.evidence)
    assert "date of birth: not compared" in [e.outcome for e in m.evidence]
    m2 = score(Person(first_name="Ann", last_name="Lee"), cand(BASE))
    assert m2.total_weight == sum(e.weight for e in m2.evidence if e.field.endswith("name"))
    assert probability_of(0.0) == pytest.approx(1 / (1 + 2**-PRIOR_LOG2_ODDS))


def test_weight_table_signs() -> None:
    for fld, rules in RULES.items():
        for code, rule in rules.items():
            assert 0 < rule.m <= 1 and 0 < rule.u <= 1
            assert (rule.weight < 0) is (code in ("different", "swapped")), (fld, code)


# --- Bands, ranking, query check --------------------------------------------------


def test_bands() -> None:
    exact = Person("William", "Garcia", DOB)
    assert score(exact, cand(exact)).band == "strong"
    nick_slip = score(Person("Bill", "Garcia", date(1984, 3, 8)), cand(exact))
    assert nick_slip.band == "possible" and 0.6 <= nick_slip.probability < 0.95
    # names alone: on the review list, never a decision
    assert score(Person("William", "Garcia"), cand(exact)).band == "weak"
    assert score(Person(ssn_digits="123456789"), cand(Person(), "equal")).band == "strong"
    loose = Thresholds(strong=0.999999, possible=0.5)
    assert score(Person("Bill", "Garcia", DOB), cand(exact), loose).band == "possible"
    with pytest.raises(ValueError):
        Thresholds(strong=0.5, possible=0.6)
    with pytest.raises(ValueError):
        Thresholds(strong=0.9, possible=0.6, weak=0.7)


def test_rank_orders_cuts_and_limits() -> None:
    q = Person("William", "Garcia", DOB)
    best = cand(Person("William", "Garcia", DOB))
    good = cand(Person("Bill", "Garcia", date(1984, 7, 3)))
    weak = cand(Person("William", "Garcia", date(1984, 3, 8)))
    none = cand(Person("Frank", "Garza", date(1990, 1, 1)))
    got = rank(q, [none, weak, good, best, best])
    assert [m.candidate for m in got] == [best, good, weak]
    assert all(a.total_weight >= b.total_weight for a, b in itertools.pairwise(got))
    assert [m.candidate for m in rank(q, [none, weak, good, best], limit=2)] == [best, good]
    strict = Thresholds(strong=0.99, possible=0.99, weak=0.99)
    assert [m.candidate for m in rank(q, [weak, good, best], strict)] == [best]


@pytest.mark.parametrize(
    "query",
    [
        Person(ssn_digits="123456789"),
        Person(idoc_number="A1"),
        Person(email="a@b.org"),
        Person(first_name="Ann", last_name="Lee"),
        Person(last_name="Lee", date_of_birth=DOB),
    ],
)
def test_check_query_accepts(query: Person) -> None:
    """An SSN, an IDOC number or an email alone, or two of names and DOB, is enough:
    the check lets the query through (it raises ValueError on a refusal)."""
    try:
        outcome = check_query(query)
    except ValueError as exc:
        pytest.fail(f"{query} was refused: {exc}")
    assert outcome is None


@pytest.mark.parametrize(
    "query",
    [
        Person(),
        Person(first_name="Ann"),
        Person(first_name="Ann", last_name=" - "),
        Person(date_of_birth=DOB, ssn_last4="6789"),
    ],
)
def test_check_query_rejects(query: Person) -> None:
    with pytest.raises(ValueError, match="two of first name, last name and date of birth"):
        check_query(query)


# --- Synthetic sanity check -------------------------------------------------------

_FIRST_WORDS = (
    "William Robert James Elizabeth Margaret Katherine Richard Thomas Joseph Michael "
    "Christopher Patricia Daniel Anthony Andrew Matthew Steven Timothy Rebecca Samantha "
    "Deborah Susan Maria Jose Luis Carmen Ana Juan Miguel Sofia Lucia Ahmed Fatima Wei "
    "Mei Olga Ivan Aisha Kwame Priya Raj Noah Emma Olivia Liam Ava Mason Ethan Chloe Zoe"
)
FIRST = _FIRST_WORDS.split()
_NICK_PAIRS = (
    "William:Bill Robert:Bob James:Jim Elizabeth:Liz Margaret:Peggy Katherine:Kate "
    "Richard:Dick Thomas:Tom Joseph:Joe Michael:Mike Christopher:Chris Patricia:Pat "
    "Daniel:Dan Anthony:Tony Andrew:Andy Matthew:Matt Steven:Steve Timothy:Tim "
    "Rebecca:Becky Samantha:Sam Deborah:Debbie Susan:Sue"
)
NICK = dict(pair.split(":") for pair in _NICK_PAIRS.split())
_LAST_WORDS = (
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore "
    "Jackson Martin Lee Thompson White Harris Clark Lewis Robinson Walker Young Allen King "
    "Wright Scott Hill Green Adams Nelson Baker Hall Campbell Mitchell Carter Roberts "
    "Nguyen Kim Patel Shah Okafor Mensah Kowalski Novak Petrov Ivanova Muñoz Peña Núñez "
    "Hernandez Gonzalez Rodriguez Ramirez Torres Flores Rivera Gomez Diaz Reyes Morales"
)
LAST = [
    *_LAST_WORDS.split(),
    "Garcia-Lopez",
    "Smith-Jones",
    "De La Cruz",
    "Van der Berg",
    "O'Brien",
    "Perez Sanchez",
    "Martinez-Ortiz",
    "Del Rio",
]


def _typo(rng: random.Random, s: str) -> str:
    i = rng.randrange(1, len(s))
    if rng.random() < 0.5 and len(s) > 3:
        return s[:i] + s[i + 1 :]  # a dropped letter
    return s[:i] + rng.choice(string.ascii_lowercase) + s[i + 1 :]


def _random_ssn(rng: random.Random) -> str:
    return f"{rng.randint(1, 665):03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def _corrupt(rng: random.Random, p: Person) -> Person:
    f, la, d, s = p.first_name or "", p.last_name or "", p.date_of_birth or DOB, p.ssn_digits
    for kind in rng.sample(range(9), rng.choice((1, 1, 2))):
        if kind == 0:
            f = _typo(rng, f)
        elif kind == 1:
            f = NICK.get(f, f)
        elif kind == 2:
            la = _typo(rng, la)
        elif kind == 3:
            f, la = la, f
        elif kind == 4 and d.day <= 12:
            d = d.replace(month=d.day, day=d.month)
        elif kind == 5:
            d = d + timedelta(days=rng.choice((-1, 1))) if d.day % 10 not in (0, 9) else d
        elif kind == 6:
            d = d.replace(year=d.year + rng.choice((-1, 1)))
        elif kind == 7 and s:
            s = rng.choice(ssn_variants(s))
        elif kind == 8 and len(la.split("-")) > 1:
            la = rng.choice(la.split("-"))
    if rng.random() < 1 / 3:
        s = None
    return Person(first_name=f, last_name=la, date_of_birth=d, ssn_digits=s)


def _population(rng: random.Random, n: int) -> list[tuple[Person, str]]:
    people = []
    for _ in range(n):
        dob = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
        ssn = _random_ssn(rng)
        stored = Person(rng.choice(FIRST), rng.choice(LAST), dob, ssn_last4=ssn[-4:])
        people.append((stored, ssn))
    return people


def _candidates(
    query: Person, people: list[tuple[Person, str]], ids: list[uuid.UUID]
) -> list[Candidate]:
    """What the repository would hand over: SSN relation from the keyed lookups."""
    out = []
    for (stored, ssn), account_id in zip(people, ids, strict=True):
        relation = ssn_relation(query.ssn_digits, ssn) if query.ssn_digits else None
        out.append(Candidate(account_id, stored, relation))
    return out


def test_nickname_table_knows_the_common_pairs() -> None:
    pairs = [(normalize_name(a).full, normalize_name(b).full) for a, b in NICK.items()]
    assert all(is_nickname(a, b) for a, b in pairs), [p for p in pairs if not is_nickname(*p)]
    assert not is_nickname("william", "frank")
    for formal, nick in NICK.items():  # the name blocks meet both ways
        assert name_keys(nick, "Lee", swapped=True) & name_keys(formal, "Lee"), nick
        assert name_keys(formal, "Lee", swapped=True) & name_keys(nick, "Lee"), nick
    assert name_keys("Will", "Lee") & name_keys("Bill", "Lee")


def test_synthetic_true_record_ranks_first() -> None:
    rng = random.Random(20240605)
    people = _population(rng, 300)
    ids = [uuid.uuid4() for _ in people]
    first = strong_wrong = blocked = 0
    for (stored, ssn), true_id in zip(people, ids, strict=True):
        original = Person(stored.first_name, stored.last_name, stored.date_of_birth, ssn)
        query = _corrupt(rng, original)
        matches: list[Match] = rank(query, _candidates(query, people, ids), limit=300)
        first += bool(matches) and matches[0].candidate.account_id == true_id
        strong_wrong += sum(
            m.band == "strong" and m.candidate.account_id != true_id for m in matches
        )
        # The blocks the repository will union would have retrieved the record.
        q_names = {
            k
            for k in name_keys(query.first_name, query.last_name, swapped=True)
            if k.startswith("fl:")
        }
        assert query.date_of_birth is not None and stored.date_of_birth is not None
        blocked += bool(
            q_names & name_keys(stored.first_name, stored.last_name)
            or stored.date_of_birth in dob_keys(query.date_of_birth)
            or (query.ssn_digits and ssn in {query.ssn_digits, *ssn_variants(query.ssn_digits)})
        )
    assert first >= 0.95 * len(people), first
    assert strong_wrong == 0
    assert blocked >= 0.98 * len(people), blocked


def test_twins_are_never_a_strong_match_unless_the_ssn_is_equal() -> None:
    dob = date(1990, 5, 5)
    twin = Person("Ava", "Moreno", dob, ssn_digits="219099998")
    other = cand(Person("Mia", "Moreno", dob, ssn_digits="219099999"), "one_digit")
    m = score(twin, other)
    assert m.total_weight > 30  # the sum alone would call it strong
    assert m.band == "possible"
    same_ssn = score(Person("Ava", "Moreno", dob, ssn_digits="219099999"),
                     cand(Person("Mia", "Moreno", dob, ssn_digits="219099999"), "equal"))
    assert same_ssn.band == "strong"


def test_initials_and_dates_block_when_both_names_are_misspelt() -> None:
    dob = date(1977, 8, 19)
    stored = index_keys("Katherine", "Szczepanski", dob)
    # both names misspelt beyond their phonetic codes, date exact: the initials meet
    assert set(query_keys("Katerhine", "Szepanski", dob)) & set(stored)  # KTRHN, SSPNSK
    # a first-name typo and a slip in the year: last name + first initial + month-day
    assert set(query_keys("Kaherine", "Szczepanski", date(1978, 8, 19))) & set(stored)
    # nothing in common: no key in common
    assert not set(query_keys("Omar", "Lindqvist", date(1960, 1, 2))) & set(stored)


def test_rank_skips_only_candidates_that_could_not_reach_possible() -> None:
    from identity.domain.matching import _cannot_reach
    from identity.domain.matching_weights import weight_for

    needed = weight_for(0.6)
    q = Person("Ann", "Lee", date(1990, 1, 2))
    far = cand(Person("Ann", "Lee", date(1955, 7, 30)))  # names exact, birthday different
    near = cand(Person("Anne", "Lee", date(1990, 2, 1)))
    same_ssn = Candidate(uuid.uuid4(), Person("Zed", "Roe", date(1950, 1, 1)), "equal")
    assert _cannot_reach(q, far, needed) and score(q, far).band is None
    assert not _cannot_reach(q, near, needed)
    assert not _cannot_reach(Person("Ann", "Lee", date(1990, 1, 2), "219099999"), same_ssn,
                             needed)
    # what rank skips is exactly what score would have dropped
    people = [far, near, same_ssn]
    ranked = {m.candidate.account_id for m in rank(q, people, limit=10)}
    scored = {c.account_id for c in people if score(q, c).band is not None}
    assert ranked == scored


# --- Issue 16: each class of miss, with a named example ---------------------------------

SARAH = Person("Sarah", "Whitfield", date(1979, 6, 14), "219099999")


def _blocked(query: Person, account: Person) -> bool:
    """Would the account's indexed keys meet the query's keys (narrow or broad)?"""
    from identity.domain.blocking import birthday_query_keys, broad_query_keys

    stored = set(index_keys(account.first_name, account.last_name, account.date_of_birth))
    q = (query.first_name, query.last_name, query.date_of_birth)
    return bool(stored & {*query_keys(*q), *broad_query_keys(*q), *birthday_query_keys(*q)})


def _review(query: Person, account: Person, relation: str | None = None) -> Match:
    """The account's place on the review list (rank with the default thresholds)."""
    [m] = rank(query, [cand(account, relation)])
    return m


def test_class_ssn_another_number_names_and_birth_agree_with_typos() -> None:
    # Sarah Whitfield remembered her SSN wrong and her names were typed with slips
    q = Person("Sara", "Whitfeild", date(1979, 6, 14), "518457302")
    m = _review(q, SARAH, "different")
    assert _blocked(q, SARAH)
    assert m.band in ("weak", "possible")  # on the list staff see...
    exact_names = _review(Person("Sarah", "Whitfield", date(1979, 6, 14), "518457302"),
                          SARAH, "different")
    assert exact_names.band == "possible"  # ...and an SSN that differs never makes strong
    assert [e.outcome for e in m.evidence if e.field == "ssn"] == ["SSN: differ"]


def test_class_names_swapped_and_misspelt() -> None:
    q = Person("Whitfeld", "Sarah", date(1979, 6, 14))
    assert _blocked(q, SARAH)
    m = _review(q, SARAH)
    assert m.band in ("possible", "strong") and m.evidence[0].code == "swapped"


def test_class_date_of_birth_missing_names_only() -> None:
    exact = Person("Sarah", "Whitfield")
    assert _blocked(exact, SARAH)  # the names-alone block (capped for common names)
    assert _review(exact, SARAH).band == "weak"  # shown, never acted on
    typo = Person("Sarah", "Whitfeild")
    assert _blocked(typo, SARAH) and _review(typo, SARAH).band == "weak"


def test_class_first_name_replaced_by_a_middle_name() -> None:
    # Sarah Anne Whitfield gives "Anne"; "Anne" is no nickname of Sarah
    q = Person("Anne", "Whitfield", date(1979, 6, 14))
    assert _blocked(q, SARAH)
    assert _review(q, SARAH).band == "possible"  # last name and birthday: not strong


def test_class_last_name_changed_by_marriage() -> None:
    q = Person("Sarah", "Okafor", date(1979, 6, 14))
    assert _blocked(q, SARAH)
    assert _review(q, SARAH).band == "weak"


def test_class_year_digits_swapped_with_a_name_typo() -> None:
    q = Person("Srah", "Whitfield", date(1997, 6, 14))
    assert _blocked(q, SARAH)
    m = _review(q, SARAH)
    assert m.band in ("weak", "possible")
    assert [e.code for e in m.evidence if e.field == "date_of_birth"] == ["year_digits_swapped"]


def test_class_date_mangled_with_a_name_typo() -> None:
    q = Person("Sarah", "Whitfeld", date(1979, 8, 12))  # two digits of the date wrong
    assert _blocked(q, SARAH)
    m = _review(q, SARAH)
    assert [e.code for e in m.evidence if e.field == "date_of_birth"] == ["two_digits"]
    assert m.band == "weak"


def test_class_a_space_inside_a_name() -> None:
    for q in (Person("Sar ah", "Whitfield", date(1979, 6, 14)),
              Person("Sarah", "Whit field", date(1979, 6, 14))):
        assert _blocked(q, SARAH)
        m = _review(q, SARAH)
        assert m.band == "strong" and {e.code for e in m.evidence[:2]} == {"exact"}


def test_strong_needs_no_field_saying_another_person() -> None:
    sarah_no_ssn = Person("Sarah", "Whitfield", date(1979, 6, 14))
    assert score(sarah_no_ssn, cand(SARAH)).band == "strong"
    # her twin: same surname and birthday, another first name, SSN a digit off
    twin = Person("Emma", "Whitfield", date(1979, 6, 14), "219099998")
    assert score(twin, cand(SARAH, "one_digit")).band != "strong"
    # the same SSN, but nothing else agrees: staff decide
    stranger = Person("Paul", "Mendez", date(1950, 1, 1), "219099999")
    assert score(stranger, cand(SARAH, "equal")).band == "possible"
    # the same SSN and names, a birthday typo: strong
    assert score(Person("Sarah", "Whitfield", date(1979, 6, 15), "219099999"),
                 cand(SARAH, "equal")).band == "strong"


# --- Fitted weights -----------------------------------------------------------------------


def test_term_frequency_makes_a_rare_surname_count_for_more() -> None:
    from identity.domain.matching_weights import Weights

    w = Weights(RULES, first_tf={"sarah": 0.01}, last_tf={"smith": 0.01, "whitfield": 2e-5})
    smith = score(Person("Sarah", "Smith", DOB), cand(Person("Sarah", "Smith", DOB)), weights=w)
    rare = score(SARAH, cand(SARAH), weights=w)
    last = {m.candidate.person.last_name: next(e for e in m.evidence if e.field == "last_name")
            for m in (smith, rare)}
    assert last["Whitfield"].weight > RULES["last_name"]["exact"].weight > last["Smith"].weight
    assert last["Smith"].outcome == "last name: exact (a common name)"
    assert last["Whitfield"].outcome == "last name: exact (a rare name)"
    # an unknown name gets the floor, never more than the cap above the table
    from identity.domain.matching_weights import TF_MAX_GAIN

    assert w.exact_name_weight("last_name", "zzyzx") <= (
        RULES["last_name"]["exact"].weight + TF_MAX_GAIN)


def test_em_recovers_m_and_lambda_from_a_known_mixture() -> None:
    from identity.domain.matching_weights import em

    rng = random.Random(5)
    true_m = {"exact": 0.8, "close": 0.1, "different": 0.1}
    true_u = {"exact": 0.01, "close": 0.04, "different": 0.95}
    vectors = []
    for _ in range(20_000):
        match = rng.random() < 0.3
        probs = true_m if match else true_u
        vec = []
        for fld in ("first_name", "last_name"):
            code = rng.choices(list(probs), weights=list(probs.values()))[0]
            vec.append((fld, code))
        dob = "exact" if rng.random() < (0.9 if match else 0.001) else "different"
        vec.append(("date_of_birth", dob))
        vectors.append(tuple(vec))
    u = {("first_name", c): p for c, p in true_u.items()}
    u |= {("last_name", c): p for c, p in true_u.items()}
    u |= {("date_of_birth", "exact"): 0.001, ("date_of_birth", "different"): 0.999}
    m, lam, n = em(vectors, u, iterations=60)
    assert n == 20_000
    assert abs(lam - 0.3) < 0.03
    assert abs(m[("first_name", "exact")] - 0.8) < 0.05
    assert abs(m[("date_of_birth", "exact")] - 0.9) < 0.05


def test_fit_weights_round_trips_through_json() -> None:
    from identity.domain.matching_weights import Weights, fit_weights

    cand_vecs = [(("first_name", "exact"), ("last_name", "exact"), ("date_of_birth", "exact"))
                 ] * 50 + [(("first_name", "different"), ("last_name", "exact"),
                            ("date_of_birth", "different"))] * 200
    rand_vecs = [(("first_name", "different"), ("last_name", "different"),
                  ("date_of_birth", "different"))] * 1000
    w = fit_weights(cand_vecs, rand_vecs, {"sarah": 3}, {"whitfield": 1}, 100)
    assert w.rules["ssn"]["equal"] == RULES["ssn"]["equal"]  # too rare to fit: the table's
    assert w.rules["first_name"]["different"].u > 0.9
    back = Weights.from_json(w.to_json())
    assert back.rules["first_name"]["exact"].m == pytest.approx(w.rules["first_name"]["exact"].m)
    assert back.last_tf == {"whitfield": 0.01} and back.fitted == w.fitted
