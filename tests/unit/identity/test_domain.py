"""Identity domain rules: input checks, SSN format, usernames, password policy, lockout."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, timedelta
from itertools import islice, pairwise
from typing import Any

import pytest

from identity.domain.accounts import (
    IDENTIFIER_KINDS,
    STAFF_ROLES,
    DomainError,
    FieldError,
    InvalidInput,
    LockoutPolicy,
    check_password,
    common_passwords,
    generate_temporary_password,
    normalize_identifier,
    normalize_ssn,
    ssn_last4,
    username_candidates,
    validate_customer,
    validate_username,
)

TODAY = date(2026, 3, 1)


# --- SSN ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "digits"),
    [("123-45-6789", "123456789"), ("123456789", "123456789"), ("  665-01-0001\n", "665010001")],
)
def test_normalize_ssn_accepts_dashed_and_bare(raw: str, digits: str) -> None:
    assert normalize_ssn(raw) == digits


@pytest.mark.parametrize(
    "raw",
    # Arabic-Indic and full-width digits are not ASCII digits.
    [
        "",
        "12345678",
        "1234567890",
        "123-456-789",
        "12-345-6789",
        "123 45 6789",
        "123-456789",
        "123.45.6789",
        "abc-de-fghi",
        "١٢٣-٤٥-٦٧٨٩",
        "123-45-678９",
    ],
)
def test_normalize_ssn_refuses_bad_format_without_echo(raw: str) -> None:
    with pytest.raises(ValueError, match="must be in the format XXX-XX-XXXX") as info:
        normalize_ssn(raw)
    assert not re.search(r"\d", str(info.value))


@pytest.mark.parametrize(
    "raw",
    ["000-12-3456", "666-12-3456", "900-12-3456", "999999999", "123-00-4567", "123-45-0000"],
)
def test_normalize_ssn_refuses_numbers_never_issued(raw: str) -> None:
    with pytest.raises(ValueError, match="is not a number the SSA issues") as info:
        normalize_ssn(raw)
    assert not re.search(r"\d", str(info.value))


def test_ssn_last4() -> None:
    assert ssn_last4("123-45-6789") == "6789"
    assert ssn_last4("123456789") == "6789"


# --- Customer input ----------------------------------------------------------------


def test_validate_customer_cleans_values() -> None:
    email, dob = " Zoe.OBrien@Example.ORG ", date(1990, 5, 17)
    got = validate_customer("  Zoë ", "O'Brien-Smith", dob, email, "123-45-6789", today=TODAY)
    assert got.first_name == "Zoë"
    assert got.last_name == "O'Brien-Smith"
    assert got.date_of_birth == date(1990, 5, 17)
    assert got.email == "zoe.obrien@example.org"
    assert got.ssn == "123456789"
    assert "123456789" not in repr(got)


def test_validate_customer_optional_fields_may_be_absent_or_blank() -> None:
    got = validate_customer("Ann", "Lee", None, "  ", None, today=TODAY, require_dob=False)
    assert (got.date_of_birth, got.email, got.ssn) == (None, None, None)
    assert validate_customer("Ann", "Lee", date(1980, 1, 1), None, "", today=TODAY).ssn is None


def test_validate_customer_lists_every_bad_field_without_values() -> None:
    secret_ssn, bad_email = "666-12-3456", "no-at-sign.example.org"
    with pytest.raises(InvalidInput) as info:
        validate_customer(" ", "x" * 101, date(2030, 1, 1), bad_email, secret_ssn, today=TODAY)
    err = info.value
    assert isinstance(err, DomainError)
    fields = ["first_name", "last_name", "date_of_birth", "email", "ssn"]
    assert [e.field for e in err.errors] == fields
    text = str(err) + " ".join(e.reason for e in err.errors)
    for value in ("666", "3456", "no-at-sign", "xxxx"):
        assert value not in text
    assert FieldError("date_of_birth", "must not be in the future") in err.errors
    assert FieldError("ssn", "is not a number the SSA issues") in err.errors


@pytest.mark.parametrize(
    "name",
    ["", "   ", "a" * 101, "Ann\x00", "Ann\nLee", "Ann\x1b[31m", "Ann\u202eeL", "Ann\ud800"],
)
def test_validate_customer_refuses_bad_names(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_customer(name, "Lee", date(1980, 1, 1), None, None, today=TODAY)
    assert [e.field for e in info.value.errors] == ["first_name"]


def test_validate_customer_name_length_bounds() -> None:
    got = validate_customer("a", "b" * 100, date(1980, 1, 1), None, None, today=TODAY)
    assert (got.first_name, len(got.last_name)) == ("a", 100)


def test_validate_customer_date_of_birth_bounds() -> None:
    oldest = date(1906, 3, 1)
    assert validate_customer("A", "B", oldest, None, None, today=TODAY).date_of_birth == oldest
    assert validate_customer("A", "B", TODAY, None, None, today=TODAY).date_of_birth == TODAY
    for bad, reason in [
        (oldest - timedelta(days=1), "must not be more than 120 years ago"),
        (TODAY + timedelta(days=1), "must not be in the future"),
    ]:
        with pytest.raises(InvalidInput) as info:
            validate_customer("A", "B", bad, None, None, today=TODAY)
        assert info.value.errors == [FieldError("date_of_birth", reason)]


def test_validate_customer_requires_dob_unless_told_otherwise() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_customer("A", "B", None, None, None, today=TODAY)
    assert info.value.errors == [FieldError("date_of_birth", "is required")]


def test_validate_customer_leap_day_today() -> None:
    leap = date(2020, 2, 29)  # 120 years earlier, 1900, has no 29 February
    assert validate_customer("A", "B", date(1900, 2, 28), None, None, today=leap).date_of_birth
    with pytest.raises(InvalidInput):
        validate_customer("A", "B", date(1900, 2, 27), None, None, today=leap)


@pytest.mark.parametrize("email", ["a@b", "plain", "a@@example.org", "a b@example.org", "@x.org"])
def test_validate_customer_refuses_bad_emails(email: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_customer("A", "B", date(1980, 1, 1), email, None, today=TODAY)
    assert info.value.errors == [FieldError("email", "is not a valid email address")]


# --- Identifiers -------------------------------------------------------------------


def test_normalize_identifier_good() -> None:
    assert {"idoc_number", "iwds_person_id"} == IDENTIFIER_KINDS
    assert normalize_identifier("idoc_number", " r12345 ") == "R12345"
    assert normalize_identifier("iwds_person_id", "0042") == "0042"
    assert normalize_identifier("iwds_person_id", "9" * 20) == "9" * 20


@pytest.mark.parametrize(
    ("kind", "value"),
    [("idoc_number", v) for v in ("12345", "RR12345", "R1234", "R123456", "É12345", "")]
    + [("iwds_person_id", v) for v in ("", "9" * 21, "12a", "-1", "١٢")]
    + [("passport", "123")],
)
def test_normalize_identifier_bad(kind: str, value: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        normalize_identifier(kind, value)


# --- Usernames ---------------------------------------------------------------------


def test_username_candidates_are_readable() -> None:
    first = next(username_candidates("John", "Smith", random.Random(1)))
    assert re.fullmatch(r"jsmith[1-9][0-9]{3}", first)


@pytest.mark.parametrize(
    ("first", "last", "base"),
    [
        ("Zoë", "Ødegård", "zodegard"),
        ("José", "Núñez-García", "jnunezgarcia"),
        ("Mary Ann", "Abcdefghijklmnopq", "mabcdefghijkl"),
        ("李", "Wang", "wang"),
        ("Madonna", "", "madonna"),
        ("王", "李", "user"),
        ("", "", "user"),
    ],
)
def test_username_candidates_bases(first: str, last: str, base: str) -> None:
    for candidate in islice(username_candidates(first, last, random.Random(2)), 5):
        assert re.fullmatch(re.escape(base) + r"[0-9]{4}", candidate)
        assert validate_username(candidate) == candidate


def test_username_candidates_are_distinct_and_endless() -> None:
    got = list(islice(username_candidates("A", "B", random.Random(3)), 6000))
    assert len(set(got)) == 6000
    assert any(len(c) > len("ab") + 4 for c in got)  # the digits widen once 4 run short
    assert all(validate_username(c) == c for c in got)


def test_username_candidates_default_rng() -> None:
    a, b = islice(username_candidates("Ann", "Lee"), 2)
    assert a != b and a.startswith("alee")


@pytest.mark.parametrize(
    ("raw", "clean"), [("JSmith4821", "jsmith4821"), ("a.b_c-d", "a.b_c-d"), ("abc", "abc")]
)
def test_validate_username_good(raw: str, clean: str) -> None:
    assert validate_username(raw) == clean
    assert validate_username("x" * 40) == "x" * 40


@pytest.mark.parametrize(
    "raw", ["ab", "x" * 41, "john smith", "jöhn", "\u212aate", "a@b", "", "abc\x00"]
)
def test_validate_username_bad(raw: str) -> None:
    with pytest.raises(ValueError, match="must be 3 to 40 characters"):
        validate_username(raw)


def test_staff_roles() -> None:
    assert {"admin", "staff", "reentry"} <= STAFF_ROLES


# --- Passwords ---------------------------------------------------------------------

GOOD = "tulip orbit 42 canyon"


def test_check_password_accepts_long_passphrase() -> None:
    assert check_password(GOOD, username="jsmith4821", names=["John", "Smith"]) == []


def test_check_password_length_counts_code_points_after_nfkc() -> None:
    accents = "éàüöñçøåîêôûëïÿ"  # 15 code points, 30 bytes
    assert check_password(accents, username="", names=[]) == []
    assert "must be at least 15 characters" in check_password(
        "e\u0301" * 7, username="", names=[]
    )  # NFKC composes to 7
    assert check_password("x7" * 7 + "q", username="", names=[]) == []
    assert "must be at least 15 characters" in check_password("x7" * 7, username="", names=[])
    assert "must be at most 256 characters" in check_password("ab3" * 86, username="", names=[])
    assert check_password("ab3" * 85 + "x", username="", names=[]) == []


def test_check_password_no_composition_rules() -> None:
    for pw in ["all lower case words here", "ALLUPPERCASEWITHOUT", "884213709955417863"]:
        assert check_password(pw, username="", names=[]) == []


def test_check_password_refuses_common_passwords_case_insensitively() -> None:
    common = sorted(p for p in common_passwords() if len(p) >= 15)
    assert common, "the shipped list has long entries"
    for pw in common[:20]:
        assert "is too common or too easy to guess" in check_password(
            pw.upper(), username="", names=[]
        )
    assert len(common_passwords()) > 25_000
    assert "password" in common_passwords()


@pytest.mark.parametrize("pw", ["a" * 20, "abcabcabcabcabcab", "passwordpasswordpassword"])
def test_check_password_refuses_repeated_patterns(pw: str) -> None:
    assert check_password(pw, username="", names=[]) == ["is too common or too easy to guess"]


def test_check_password_refuses_username_and_names() -> None:
    reasons = check_password("my JSMITH4821 is great", username="jsmith4821", names=[])
    assert reasons == ["must not contain your username"]
    reasons = check_password("i love smithsonian art", username="u", names=["John", "Smith"])
    assert reasons == ["must not contain your name"]
    # Names shorter than three characters do not count.
    assert check_password("lee and al went out", username="zz", names=["Al", "Le"]) == []


def test_check_password_reasons_never_echo_the_password() -> None:
    pw = "hunter2"
    for reason in check_password(pw, username="hunter", names=["hunter"]):
        assert pw not in reason and "hunter" not in reason


def test_check_password_refuses_unpaired_surrogates() -> None:
    assert "must not contain unpaired surrogate characters" in check_password(
        "fine long password \ud800", username="", names=[]
    )


def test_temporary_password_shape() -> None:
    pw = generate_temporary_password()
    assert re.fullmatch(r"([A-Z][2-9][A-Z][2-9]-){3}[A-Z][2-9][A-Z][2-9]", pw)
    assert not set(pw) & set("0O1lI")
    assert generate_temporary_password() != pw


def test_temporary_passwords_always_pass_the_policy() -> None:
    rng = random.Random(4)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(3000):
        pw = generate_temporary_password(rng)
        first = "".join(rng.choices(letters, k=rng.randint(3, 10))).title()
        last = "".join(rng.choices(letters, k=rng.randint(3, 12))).title()
        username = next(username_candidates(first, last, rng))
        staff_username = "".join(rng.choices(letters + "._-", k=rng.randint(3, 12)))
        for user in (username, staff_username):
            assert check_password(pw, username=user, names=[first, last]) == [], (pw, user)


# --- Lockout -----------------------------------------------------------------------


def test_lockout_delays_grow_and_cap() -> None:
    policy = LockoutPolicy()
    delays = [policy.delay_for(n) for n in range(0, 8)]
    assert delays[0] == 0.0
    assert delays[1] == 0.25
    assert all(a <= b for a, b in pairwise(delays))
    assert delays[2] > delays[1]
    assert max(delays) == 2.0
    assert policy.delay_for(10_000) == 2.0


def test_lockout_locks_at_max_failures() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    policy = LockoutPolicy(max_failures=3, lock_minutes=10)
    assert policy.locked_until(2, now) is None
    assert policy.locked_until(3, now) == now + timedelta(minutes=10)
    assert policy.locked_until(7, now) == now + timedelta(minutes=10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_failures": 0},
        {"lock_minutes": 0},
        {"base_delay_seconds": -1.0},
        {"base_delay_seconds": 3.0, "max_delay_seconds": 2.0},
    ],
)
def test_lockout_refuses_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        LockoutPolicy(**kwargs)
