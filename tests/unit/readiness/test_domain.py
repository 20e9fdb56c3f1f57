"""readiness's rules alone: screening records, which version wins, the customer view."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from readiness.domain import (
    BadLine,
    Catalogue,
    Stored,
    decode_line,
    readiness_view,
    screen,
    window,
)
from shared.servicekit.errors import InvalidInput

CAT = Catalogue(frozenset({"skills", "work-values"}), frozenset({"ees-teamwork"}))
ACCOUNT = str(uuid.uuid4())


def rec(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "kind": "assessment_completed", "record_id": "r1", "account_id": ACCOUNT,
        "occurred_at": "2026-03-01T10:00:00Z", "assessment_code": "skills",
        "version": 3, "completed_at": "2026-03-01T09:00:00-06:00",
        "scores": {"math": 12}, "summary": "ok"}
    base.update(changes)
    return base


def test_a_good_record_and_its_stored_shape() -> None:
    out = screen([(1, rec())], CAT)
    assert out.rejected == []
    [r] = out.records
    assert (r.code, r.kind, str(r.account_id)) == ("skills", "assessment_completed", ACCOUNT)
    assert r.completed_at == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    assert r.data == {"version": "3", "scores": {"math": 12}, "summary": "ok"}


@pytest.mark.parametrize(("changes", "reason"), [
    ({"kind": None}, "kind: must be one of"),
    ({"record_id": "  "}, "record_id: must be non-empty text"),
    ({"account_id": 7}, "account_id: must be a UUID"),
    ({"occurred_at": "yesterday"}, "occurred_at: must be an ISO 8601 date-time"),
    ({"assessment_code": "tarot"}, "assessment_code: not in the catalogue"),
    ({"version": True}, "version: must be text or a number"),
    ({"scores": {"math": float("nan")}}, "scores: must be a finite number"),
    ({"scores": {"math": True}}, "scores: must be a number"),
    ({"scores": [1]}, "scores: must be an object"),
    ({"completed_at": None}, "completed_at: required"),
])
def test_bad_fields_give_a_reason_without_the_value(changes: dict[str, object],
                                                    reason: str) -> None:
    out = screen([(4, rec(**changes))], CAT)
    assert out.records == []
    [rej] = out.rejected
    assert rej.reason.startswith(reason) and rej.line == 4
    for value in changes.values():
        if isinstance(value, str) and value.strip():
            assert value not in rej.reason


def test_the_latest_version_of_a_record_in_one_batch_wins() -> None:
    out = screen([(1, rec(occurred_at="2026-03-02T00:00:00Z", summary="new")),
                  (2, rec(occurred_at="2026-03-01T00:00:00Z", summary="old"))], CAT)
    [r] = out.records
    assert r.data["summary"] == "new"


def test_a_line_that_is_not_json() -> None:
    bad = decode_line(b"\xff\xfe")
    assert isinstance(bad, BadLine) and bad.reason == "not UTF-8 text"
    out = screen([(9, decode_line(b"{oops"))], CAT)
    assert out.rejected[0].reason == "not a JSON object" and out.rejected[0].line == 9


def test_the_view_takes_the_latest_by_completion_and_keeps_history() -> None:
    t = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        Stored("a1", "assessment_completed", t, "skills", datetime(2026, 1, 1, tzinfo=UTC),
               {"version": "1", "scores": {}, "summary": "first"}),
        Stored("a2", "assessment_completed", t, "skills", datetime(2026, 2, 1, tzinfo=UTC),
               {"version": "1", "scores": {}, "summary": "second"}),
        Stored("p1", "employment101_plan_updated", datetime(2026, 3, 5, tzinfo=UTC), None,
               None, {"goals": ["b"], "steps": []}),
        Stored("p0", "employment101_plan_updated", datetime(2026, 3, 4, tzinfo=UTC), None,
               None, {"goals": ["a"], "steps": []}),
        Stored("m1", "employment101_module_completed", t, "ees-teamwork", t,
               {"score": 90, "attempt": 1}),
        Stored("m2", "employment101_module_completed", t, "ees-teamwork",
               datetime(2026, 3, 2, tzinfo=UTC), {"score": 70, "attempt": 2}),
    ]
    view = readiness_view(rows, {"skills": "Skills Assessment"}, {})
    [a] = view["assessments"]
    assert a["summary"] == "second" and [h["record_id"] for h in a["history"]] == ["a2", "a1"]
    assert view["employment101"]["plan"]["goals"] == ["b"]
    [m] = view["employment101"]["modules"]
    assert (m["attempt"], m["score"], m["best_score"]) == (2, 70, 90)


def test_a_window_is_business_dates_in_the_portal_zone() -> None:
    zone = ZoneInfo("America/Chicago")
    w = window(date(2026, 3, 1), date(2026, 3, 1), zone)
    assert w.start == datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    assert w.end == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        window(date(2026, 3, 2), date(2026, 3, 1), zone)
