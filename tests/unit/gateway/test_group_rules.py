"""The group pages' pure rules: the group tree, form checks and the dashboard's dates."""

from __future__ import annotations

import uuid
from datetime import date

from gateway.service.groups import (
    BODY_MAX,
    MAX_INVITES,
    SUBJECT_MAX,
    children_of,
    dashboard_params,
    date_range,
    group_tree,
    invite_form,
    message_problems,
    name_problems,
    options,
    split_emails,
)


def _g(name: str, parent: str | None = None, kind: str = "personal", n: int = 0,
       gid: str | None = None) -> dict[str, object]:
    return {"id": gid or str(uuid.uuid4()), "name": name, "kind": kind, "parent_id": parent,
            "member_count": n}


def test_the_tree_nests_subgroups_under_their_parent_by_name() -> None:
    top = _g("Resume workshop", n=3)
    b = _g("b class", parent=str(top["id"]), n=1)
    a = _g("A class", parent=str(top["id"]), n=2)
    deeper = _g("Tuesday", parent=str(a["id"]))
    other = _g("Alpha")
    tree = group_tree([b, deeper, top, a, other])
    assert [n.name for n in tree] == ["Alpha", "Resume workshop"]
    workshop = tree[1]
    assert workshop.member_count == 3
    assert [c.name for c in workshop.children] == ["A class", "b class"]
    assert [c.name for c in workshop.children[0].children] == ["Tuesday"]


def test_a_subgroup_whose_parent_is_not_reached_stands_at_the_top() -> None:
    orphan = _g("Caseload 07-03-114", parent=str(uuid.uuid4()), kind="lwia", n=12)
    tree = group_tree([orphan])
    assert [(n.name, n.member_count, n.children) for n in tree] == [
        ("Caseload 07-03-114", 12, [])]


def test_children_of_lists_only_direct_subgroups() -> None:
    top = _g("Top")
    child = _g("child", parent=str(top["id"]))
    grandchild = _g("grandchild", parent=str(child["id"]))
    found = children_of([top, child, grandchild], uuid.UUID(str(top["id"])))
    assert [g["name"] for g in found] == ["child"]
    assert children_of([top], uuid.uuid4()) == []


def test_a_group_name_must_be_given_and_not_too_long() -> None:
    assert [p.message for p in name_problems("   ")] == ["Enter a name for the group"]
    assert name_problems("x" * 200) == []
    assert name_problems("x" * 201)[0].field == "name"


def test_a_message_needs_a_subject_and_a_body_within_their_limits() -> None:
    both = message_problems(" ", "\n")
    assert [(p.field, p.message) for p in both] == [
        ("subject", "Enter a subject"), ("body", "Enter the message")]
    assert message_problems("Hello", "See you") == []
    long = message_problems("s" * (SUBJECT_MAX + 1), "b" * (BODY_MAX + 1))
    assert [p.field for p in long] == ["subject", "body"]
    assert "200 characters" in long[0].message and "20,000" in long[1].message


def test_emails_are_split_on_lines_commas_and_spaces_without_repeats() -> None:
    good, bad = split_emails("pat@example.org, Ann@Example.org\nann@example.org;  x@y\nnope")
    assert good == ["pat@example.org", "Ann@Example.org"]
    assert bad == ["x@y", "nope"]
    assert split_emails("  ") == ([], [])


def test_the_invitation_form_names_what_is_wrong() -> None:
    cid = str(uuid.uuid4())
    emails, customers, problems = invite_form("pat@example.org", cid)
    assert (emails, customers, problems) == (["pat@example.org"], [cid], [])
    _, _, problems = invite_form("pat@example.org, not-an-email", "")
    assert [p.field for p in problems] == ["emails"]
    assert "not-an-email" in problems[0].message
    _, _, problems = invite_form("", "marcus")
    assert [p.field for p in problems] == ["customer_ids"]
    _, _, problems = invite_form("", "")
    assert [p.message for p in problems] == ["Enter an email address or a customer account ID"]
    many = "\n".join(f"p{i}@example.org" for i in range(MAX_INVITES + 1))
    assert "at most" in invite_form(many, "")[2][0].message


def test_the_dashboard_dates_are_optional_real_and_in_order() -> None:
    assert date_range("", "") == (None, None, [])
    assert date_range("2026-01-01", "2026-03-31")[:2] == (date(2026, 1, 1), date(2026, 3, 31))
    _, _, problems = date_range("2026-13-01", "")
    assert [(p.field, p.message) for p in problems] == [
        ("from", "From: enter a date like 2026-03-31")]
    _, _, problems = date_range("2026-03-31", "2026-01-01")
    assert [p.field for p in problems] == ["to"]


def test_dashboard_params_leave_out_empty_dates() -> None:
    assert dashboard_params(None, None, True) == {"include_subgroups": "true"}
    assert dashboard_params(date(2026, 1, 1), date(2026, 2, 1), False) == {
        "include_subgroups": "false", "from": "2026-01-01", "to": "2026-02-01"}


def test_options_keep_the_labels_order() -> None:
    assert options({"b": "Bee", "a": "Ay"}) == [{"code": "b", "name": "Bee"},
                                                {"code": "a", "name": "Ay"}]
