"""The Add Customer form's rules: every field, each broken rule named at once, the
SSN never echoed, retired codes, the decision and the PATCH rules."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from enrollment.domain.corrections import Facts, check_patch
from enrollment.domain.programs import InvalidInput
from enrollment.domain.returning_citizens import (
    FORM_FIELDS,
    Decision,
    check_form,
    check_submission,
    fingerprint,
    mentioned_codes,
    normalize_idoc,
    unsettled,
)

TODAY = date(2026, 12, 1)
SSN = "219-09-9999"
KNOWN: dict[tuple[str, str], bool] = {
    ("institutions", "kewanee-lsrc"): False,
    ("institutions", "dwight"): True,  # retired
    ("counties", "cook"): False,
    ("counties", "will"): False,
    ("counties", "old-county"): True,
    ("offenses", "burglary"): False,
    ("offenses", "theft"): False,
    ("offenses", "old-offense"): True,
}


def good(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "parent_institution": "kewanee-lsrc", "idoc_number": "r12345",
        "idoc_number_confirmation": "R12345", "first_name": " Marcus ", "last_name": "O'Neil",
        "ssn": SSN, "date_of_birth": "1988-04-12", "counties_of_commitment": ["cook", "will"],
        "msr_date": "2027-01-15", "msr_county": "cook", "offenses": ["burglary"],
        "enrollment_date": "2026-11-30",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None or k in changes}


def errors_of(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        check_form(raw, today=TODAY, known=KNOWN)
    return {e.field: e.reason for e in caught.value.errors}


def test_a_good_form_is_cleaned() -> None:
    intake = check_form(good(), today=TODAY, known=KNOWN)
    assert intake.idoc_number == "R12345"
    assert intake.first_name == "Marcus"
    assert intake.counties == ("cook", "will")
    assert intake.ssn == SSN
    assert SSN not in repr(intake)
    assert intake.match_query() == {
        "first_name": "Marcus", "last_name": "O'Neil", "date_of_birth": "1988-04-12",
        "idoc_number": "R12345", "ssn": SSN}


def test_the_optional_fields_may_be_left_out() -> None:
    intake = check_form(good(ssn=None, msr_county=None, offenses=None), today=TODAY, known=KNOWN)
    assert intake.ssn is None and intake.msr_county is None and intake.offenses == ()
    assert "ssn" not in intake.match_query()
    intake = check_form(good(ssn="  ", msr_county="", offenses=[]), today=TODAY, known=KNOWN)
    assert intake.ssn is None and intake.msr_county is None and intake.offenses == ()
    # ... or not sent at all
    absent = {k: v for k, v in good().items() if k not in ("ssn", "msr_county", "offenses")}
    intake = check_form(absent, today=TODAY, known=KNOWN)
    assert intake.ssn is None and intake.msr_county is None and intake.offenses == ()


def test_duplicated_codes_count_once() -> None:
    intake = check_form(good(counties_of_commitment=["will", "cook", "will"],
                             offenses=["theft", "theft"]), today=TODAY, known=KNOWN)
    assert intake.counties == ("will", "cook") and intake.offenses == ("theft",)


# (case, changes, field named)
RULES: list[tuple[str, dict[str, Any], str]] = [
    ("institution missing", {"parent_institution": None}, "parent_institution"),
    ("institution blank", {"parent_institution": " "}, "parent_institution"),
    ("institution unknown", {"parent_institution": "nowhere"}, "parent_institution"),
    ("institution retired", {"parent_institution": "dwight"}, "parent_institution"),
    ("institution a number", {"parent_institution": 7}, "parent_institution"),
    ("IDOC missing", {"idoc_number": None}, "idoc_number"),
    ("IDOC without letter", {"idoc_number": "123456", "idoc_number_confirmation": "123456"},
     "idoc_number"),
    ("IDOC four digits", {"idoc_number": "R1234", "idoc_number_confirmation": "R1234"},
     "idoc_number"),
    ("IDOC six digits", {"idoc_number": "R123456", "idoc_number_confirmation": "R123456"},
     "idoc_number"),
    ("IDOC two letters", {"idoc_number": "RA2345", "idoc_number_confirmation": "RA2345"},
     "idoc_number"),
    ("IDOC a number", {"idoc_number": 12345}, "idoc_number"),
    ("IDOC confirmation missing", {"idoc_number_confirmation": None},
     "idoc_number_confirmation"),
    ("IDOC confirmation differs", {"idoc_number_confirmation": "R12346"},
     "idoc_number_confirmation"),
    ("first name missing", {"first_name": None}, "first_name"),
    ("first name blank", {"first_name": "   "}, "first_name"),
    ("first name 101 characters", {"first_name": "A" * 101}, "first_name"),
    ("first name control character", {"first_name": "Mar\x00cus"}, "first_name"),
    ("last name missing", {"last_name": None}, "last_name"),
    ("last name bidi override", {"last_name": "O\u202eNeil"}, "last_name"),
    ("last name a list", {"last_name": ["O", "Neil"]}, "last_name"),
    ("SSN without dashes", {"ssn": "219099999"}, "ssn"),
    ("SSN too few digits", {"ssn": "219-09-999"}, "ssn"),
    ("SSN letters", {"ssn": "219-O9-9999"}, "ssn"),
    ("SSN area 000", {"ssn": "000-12-3456"}, "ssn"),
    ("SSN area 666", {"ssn": "666-12-3456"}, "ssn"),
    ("SSN area 9xx", {"ssn": "912-12-3456"}, "ssn"),
    ("SSN group 00", {"ssn": "219-00-3456"}, "ssn"),
    ("SSN serial 0000", {"ssn": "219-09-0000"}, "ssn"),
    ("SSN a number", {"ssn": 219099999}, "ssn"),
    ("SSN confirmation differs", {"ssn_confirmation": "219-09-9998"}, "ssn_confirmation"),
    ("SSN confirmation without SSN", {"ssn": None, "ssn_confirmation": SSN}, "ssn_confirmation"),
    ("date of birth missing", {"date_of_birth": None}, "date_of_birth"),
    ("date of birth not a date", {"date_of_birth": "12/04/1988"}, "date_of_birth"),
    ("date of birth impossible", {"date_of_birth": "1988-02-30"}, "date_of_birth"),
    ("date of birth tomorrow", {"date_of_birth": "2026-12-02"}, "date_of_birth"),
    ("date of birth 121 years ago", {"date_of_birth": "1905-11-30"}, "date_of_birth"),
    ("counties missing", {"counties_of_commitment": None}, "counties_of_commitment"),
    ("counties empty", {"counties_of_commitment": []}, "counties_of_commitment"),
    ("counties not a list", {"counties_of_commitment": "cook"}, "counties_of_commitment"),
    ("county unknown", {"counties_of_commitment": ["cook", "atlantis"]},
     "counties_of_commitment.1"),
    ("county retired", {"counties_of_commitment": ["old-county"]}, "counties_of_commitment.0"),
    ("county a number", {"counties_of_commitment": [17031]}, "counties_of_commitment.0"),
    ("counties 103", {"counties_of_commitment": ["cook"] * 103}, "counties_of_commitment"),
    ("MSR date missing", {"msr_date": None}, "msr_date"),
    ("MSR date not a date", {"msr_date": "soon"}, "msr_date"),
    ("MSR date before birth", {"msr_date": "1980-01-01"}, "msr_date"),
    ("MSR county unknown", {"msr_county": "atlantis"}, "msr_county"),
    ("MSR county retired", {"msr_county": "old-county"}, "msr_county"),
    ("MSR county a list", {"msr_county": ["cook"]}, "msr_county"),
    ("offense unknown", {"offenses": ["burglary", "jaywalking"]}, "offenses.1"),
    ("offense retired", {"offenses": ["old-offense"]}, "offenses.0"),
    ("offenses not a list", {"offenses": "burglary"}, "offenses"),
    ("offenses 51", {"offenses": ["theft"] * 51}, "offenses"),
    ("enrollment date missing", {"enrollment_date": None}, "enrollment_date"),
    ("enrollment date tomorrow", {"enrollment_date": "2026-12-02"}, "enrollment_date"),
    ("enrollment date before birth", {"enrollment_date": "1987-01-01"}, "enrollment_date"),
    ("enrollment date not a date", {"enrollment_date": "2026-13-01"}, "enrollment_date"),
    ("a field the form does not have", {"nickname": "Marc"}, "nickname"),
]


@pytest.mark.parametrize(("case", "changes", "field"), RULES, ids=[r[0] for r in RULES])
def test_each_rule_names_its_field(case: str, changes: dict[str, Any], field: str) -> None:
    found = errors_of(good(**changes))
    assert field in found, found
    assert len(found) == 1, found  # only the broken rule
    assert SSN not in str(found) and "219099999" not in str(found)


def test_every_broken_rule_comes_back_at_once() -> None:
    everything_bad = {
        "parent_institution": "dwight", "idoc_number": "12345", "idoc_number_confirmation": "",
        "first_name": "", "last_name": "B" * 101, "ssn": SSN + "1", "ssn_confirmation": "x",
        "date_of_birth": "tomorrow", "counties_of_commitment": [], "msr_date": "",
        "msr_county": "atlantis", "offenses": ["jaywalking"], "enrollment_date": "2027-01-01",
        SSN: "a field named like an SSN",
    }
    found = errors_of(everything_bad)
    assert set(found) == {*FORM_FIELDS, "offenses.0", "***-**-****"} - {"offenses"}
    assert SSN not in str(found)


def test_reasons_never_repeat_the_value() -> None:
    for bad in ("219-09-999", "21909999", "219-09-99999", "000-12-3456", "219 09 9999"):
        found = errors_of(good(ssn=bad, ssn_confirmation=bad))
        assert found["ssn"] in ("must be in the format XXX-XX-XXXX",
                                "is not a number the SSA issues")
        assert bad not in str(found)


def test_a_retired_code_is_not_offered_for_new_records() -> None:
    assert errors_of(good(parent_institution="dwight")) == {
        "parent_institution": "is retired and no longer offered"}


def test_mentioned_codes_are_what_must_be_looked_up() -> None:
    assert sorted(mentioned_codes(good(offenses=["theft", 5]))) == [
        ("counties", "cook"), ("counties", "cook"), ("counties", "will"),
        ("institutions", "kewanee-lsrc"), ("offenses", "theft")]


def test_the_decision_of_step_two() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    intake, decision = check_submission(
        good(link_account_id=str(a), rejected_account_ids=[str(b), str(b)]),
        today=TODAY, known=KNOWN)
    assert decision == Decision(a, (b,))
    assert unsettled([a, b, uuid.UUID(int=1)], decision) == [uuid.UUID(int=1)]
    with pytest.raises(InvalidInput) as caught:
        check_submission(good(first_name="", link_account_id="not-a-uuid",
                              rejected_account_ids=[str(a), "x"]), today=TODAY, known=KNOWN)
    assert {e.field for e in caught.value.errors} == {
        "first_name", "link_account_id", "rejected_account_ids.1"}
    with pytest.raises(InvalidInput) as caught:
        check_submission(good(link_account_id=str(a), rejected_account_ids=[str(a)]),
                         today=TODAY, known=KNOWN)
    assert [e.field for e in caught.value.errors] == ["link_account_id"]
    with pytest.raises(InvalidInput) as caught:
        check_submission(good(rejected_account_ids=[str(uuid.uuid4())] * 21),
                         today=TODAY, known=KNOWN)
    assert [e.field for e in caught.value.errors] == ["rejected_account_ids"]
    assert intake.idoc_number == "R12345"


def test_the_fingerprint_leaves_the_ssn_out_but_not_the_rest() -> None:
    one = check_form(good(), today=TODAY, known=KNOWN)
    other_ssn = check_form(good(ssn="219-09-9998"), today=TODAY, known=KNOWN)
    other_name = check_form(good(first_name="Mark"), today=TODAY, known=KNOWN)
    none = Decision(None, ())
    assert fingerprint(one, none) == fingerprint(other_ssn, none)
    assert fingerprint(one, none) != fingerprint(other_name, none)
    assert fingerprint(one, none) != fingerprint(one, Decision(None, (uuid.uuid4(),)))
    assert SSN.encode() not in fingerprint(one, none)


def test_idoc_numbers_are_upper_case() -> None:
    assert normalize_idoc(" k54321 ") == "K54321"
    with pytest.raises(ValueError, match="one letter followed by five digits"):
        normalize_idoc("K5432")


CURRENT = Facts("dwight", "R12345", ("old-county", "cook"), date(2027, 1, 15), "old-county",
                ("old-offense",), date(2026, 11, 30))


def patch(raw: dict[str, Any]) -> dict[str, Any]:
    return check_patch(raw, CURRENT, today=TODAY, known=KNOWN, date_of_birth=date(1988, 4, 12))


def test_a_patch_changes_only_what_it_names() -> None:
    assert patch({}) == {}
    assert patch({"msr_county": None}) == {"msr_county": None}
    assert patch({"offenses": []}) == {"offenses": ()}
    assert patch({"idoc_number": "r54321", "idoc_number_confirmation": "R54321"}) == {
        "idoc_number": "R54321"}
    assert patch({"enrollment_date": "2026-11-29", "msr_date": "2027-01-15"}) == {
        "enrollment_date": date(2026, 11, 29)}
    # the same offenses in another order are no change
    assert patch({"offenses": ["old-offense"]}) == {}


def test_retired_codes_the_record_has_stay_valid() -> None:
    # the record's own retired institution, counties, MSR county and offense are kept...
    assert patch({"parent_institution": "dwight", "msr_county": "old-county",
                  "counties_of_commitment": ["cook", "old-county"],
                  "offenses": ["old-offense", "theft"]}) == {
        "counties": ("cook", "old-county"), "offenses": ("old-offense", "theft")}
    # ...but a retired code the record does not have is refused
    with pytest.raises(InvalidInput) as caught:
        check_patch({"parent_institution": "dwight"}, Facts(
            "kewanee-lsrc", "R12345", ("cook",), date(2027, 1, 15), None, (), TODAY),
            today=TODAY, known=KNOWN, date_of_birth=date(1988, 4, 12))
    assert caught.value.errors[0].field == "parent_institution"


def test_a_bad_patch_names_every_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        patch({"first_name": "Mark", "ssn": SSN, "idoc_number": "R1", "counties_of_commitment": [],
               "msr_date": "x", "enrollment_date": (TODAY + timedelta(days=1)).isoformat(),
               "offenses": ["jaywalking"], "colour": "red"})
    found = {e.field: e.reason for e in caught.value.errors}
    assert set(found) == {"first_name", "ssn", "idoc_number", "idoc_number_confirmation",
                          "counties_of_commitment", "msr_date", "enrollment_date", "offenses.0",
                          "colour"}
    assert found["first_name"] == "is changed on the customer's account, not here"
    assert SSN not in str(found)
