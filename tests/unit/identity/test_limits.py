"""The search rule (a query names the person or gives an IDOC number) and the
limits' shapes: pure, no database."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from identity.domain.accounts import (
    SEARCH_REASON,
    InvalidInput,
    MatchFields,
    clean_search_fields,
)
from identity.domain.limits import Limits, MatchCaller
from shared.servicekit.limits import Rate

TODAY = date(2026, 12, 2)
SSN = "219-09-9999"


def fields_of(**kw: object) -> MatchFields:
    return MatchFields(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kw", [
    {"first_name": "Ann", "last_name": "Lee", "date_of_birth": date(1990, 1, 2)},
    {"first_name": "Ann", "last_name": "Lee", "date_of_birth": date(1990, 1, 2), "ssn": SSN},
    {"idoc_number": "r12345"},
    {"idoc_number": "R12345", "ssn": SSN},
])
def test_a_search_that_names_the_person_is_taken(kw: dict[str, object]) -> None:
    clean = clean_search_fields(fields_of(**kw), today=TODAY)
    assert clean.idoc_number in (None, "R12345")


@pytest.mark.parametrize(("kw", "missing"), [
    ({"ssn": SSN}, {"first_name", "last_name", "date_of_birth"}),
    ({"ssn": SSN, "first_name": "Ann", "last_name": "Lee"}, {"date_of_birth"}),
    ({"ssn": SSN, "date_of_birth": date(1990, 1, 2)}, {"first_name", "last_name"}),
    ({"email": "ann@example.org"}, {"first_name", "last_name", "date_of_birth"}),
    ({"first_name": " ", "last_name": "Lee", "date_of_birth": date(1990, 1, 2)},
     {"first_name"}),
    ({}, {"first_name", "last_name", "date_of_birth"}),
])
def test_an_ssn_or_part_of_a_name_is_no_search(kw: dict[str, object], missing: set[str]
                                               ) -> None:
    with pytest.raises(InvalidInput) as exc:
        clean_search_fields(fields_of(**kw), today=TODAY)
    assert {e.field for e in exc.value.errors} == missing
    assert all(e.reason == SEARCH_REASON for e in exc.value.errors)
    assert SSN not in str(exc.value) and "9999" not in repr(exc.value.errors)


def test_bad_fields_and_missing_ones_come_together() -> None:
    with pytest.raises(InvalidInput) as exc:
        clean_search_fields(fields_of(ssn="123-45-678", first_name="Ann"), today=TODAY)
    assert {e.field for e in exc.value.errors} == {"ssn", "last_name", "date_of_birth"}
    with pytest.raises(InvalidInput) as exc:
        clean_search_fields(fields_of(idoc_number="12345"), today=TODAY)
    assert [e.field for e in exc.value.errors] == ["idoc_number"]


def test_staff_and_clients_are_counted_apart_with_their_own_rates() -> None:
    limits = Limits.of(match_per_minute=2, match_per_day=9, client_match_per_minute=5,
                       client_match_per_day=50, signin_per_minute=7,
                       registration_per_minute=3, registration_per_day=30,
                       recovery_per_minute=4, trusted_proxies="10.0.0.0/8")
    same = uuid.uuid4()
    staff, client = MatchCaller(same, "staff"), MatchCaller(same, "client")
    assert staff.key != client.key
    assert limits.for_match(staff) == (Rate.per_minute(2), Rate.per_day(9))
    assert limits.for_match(client) == (Rate.per_minute(5), Rate.per_day(50))
    assert limits.for_door("signin") == (Rate.per_minute(7),)
    assert limits.for_door("registration") == (Rate.per_minute(3), Rate.per_day(30))
    assert [str(n) for n in limits.trusted_proxies] == ["10.0.0.0/8"]
    defaults = Limits()
    assert defaults.for_match(staff) == (Rate.per_minute(30), Rate.per_day(300))


def test_the_defaults_are_the_settings_defaults() -> None:
    from identity.deps import limits_from
    from identity.settings import IdentitySettings

    assert limits_from(IdentitySettings.model_construct()) == Limits()
