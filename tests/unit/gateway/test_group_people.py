"""The pure rules of the members-by-hand, co-owner and hand-over pages."""

from __future__ import annotations

import pytest

from gateway.domain import FieldProblem
from gateway.service import ApiError
from gateway.service.group_people import (
    Login,
    customer_login,
    hand_over_notice,
    owner_rows,
    person_name,
    refusal,
    sentence,
    staff_label,
    staff_username,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("mo1234", Login("username", "mo1234")),
    ("  MO1234 ", Login("username", "MO1234")),
    (" Marcus@Example.ORG ", Login("email", "marcus@example.org")),
])
def test_a_customer_is_named_by_username_or_email(text: str, expected: Login) -> None:
    assert customer_login(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "Enter the customer's username or email address"),
    ("   ", "Enter the customer's username or email address"),
    ("two words", "Enter one username or one email address, with no spaces"),
    ("x" * 201, "Enter one username or one email address, with no spaces"),
    ("marcus@", "Enter an email address like name@example.com"),
    ("@example.org", "Enter an email address like name@example.com"),
    ("marcus@example", "Enter an email address like name@example.com"),
    ("a@b@example.org", "Enter an email address like name@example.com"),
])
def test_a_bad_customer_box_names_the_field_and_the_fix(text: str, message: str) -> None:
    problem = customer_login(text)
    assert problem == FieldProblem("member", "Username or email address", message)


def test_a_staff_username_box() -> None:
    assert staff_username(" gwen ", "co_owner", "Staff username", "Enter it") == "gwen"
    assert staff_username("", "co_owner", "Staff username", "Enter it") == FieldProblem(
        "co_owner", "Staff username", "Enter it")
    assert staff_username("g wen", "to_username", "New owner's username", "Enter it") == \
        FieldProblem("to_username", "New owner's username",
                     "New owner's username: enter one username, with no spaces")


def test_people_are_named_with_what_is_known() -> None:
    assert person_name("Marcus", "Oneil", "mo1") == "Marcus Oneil (mo1)"
    assert person_name(None, "Oneil", None) == "Oneil"
    assert person_name(None, None, "mo1") == "mo1"
    assert person_name(None, None, None) == "this person"
    assert staff_label({"name": "Gwen Grant", "username": "gwen"}) == "Gwen Grant (gwen)"
    assert staff_label({"username": "gwen", "name": None}) == "gwen"
    assert staff_label({"staff_id": "x"}) == "A staff member not known yet"


def test_owners_are_listed_owner_first_and_only_co_owners_can_be_removed() -> None:
    rows = owner_rows([
        {"staff_id": "b", "role": "co-owner", "username": "zed", "name": "Zed Z"},
        {"staff_id": "c", "role": "co-owner", "username": "amy", "name": "Amy A"},
        {"staff_id": "a", "role": "owner", "username": "gwen", "name": "Gwen Grant"},
    ])
    assert [(r["staff_id"], r["role_name"], r["removable"], r["label"]) for r in rows] == [
        ("a", "Owner", False, "Gwen Grant (gwen)"),
        ("c", "Co-owner", True, "Amy A (amy)"),
        ("b", "Co-owner", True, "Zed Z (zed)"),
    ]
    assert owner_rows([]) == []


def test_the_hand_over_outcome_in_plain_words() -> None:
    assert hand_over_notice(0, "Pat (pat)", "Gwen (gwen)") == \
        "Pat (pat) owns no personal groups, so nothing was moved."
    assert hand_over_notice(1, "Pat (pat)", "Gwen (gwen)") == \
        "1 group moved from Pat (pat) to Gwen (gwen)."
    assert hand_over_notice(3, "Pat (pat)", "Gwen (gwen)") == \
        "3 groups moved from Pat (pat) to Gwen (gwen)."


def test_a_refusal_reads_as_one_sentence() -> None:
    field = ApiError(422, {"title": "Unprocessable", "detail": "invalid input", "errors": [
        {"field": "customer_ids[0]", "reason": "is not a member of the parent group"}]})
    assert refusal(field) == "is not a member of the parent group"
    assert refusal(ApiError(409, {"title": "Conflict", "detail": "is the group's owner"})) \
        == "is the group's owner"
    assert refusal(ApiError(403, {"title": "Forbidden"})) == "Forbidden"
    assert sentence("marcus is not a member.") == "Marcus is not a member."
    assert sentence(" is not active ") == "Is not active."
    assert sentence("") == ""
