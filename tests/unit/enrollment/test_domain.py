"""Programs, their typed questions and answers, status changes, cursors, the hand-out."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from enrollment.domain import handout
from enrollment.domain.programs import (
    InvalidInput,
    Question,
    check_answers,
    check_program,
    check_questions,
    check_reference_entry,
    check_status_change,
)
from shared.servicekit.paging import cursor_key as decode_cursor
from shared.servicekit.paging import encode_cursor

TODAY = date(2026, 12, 1)
QUESTIONS = [
    {"key": "goal", "label": "What is your goal?", "type": "text", "required": True},
    {"key": "veteran", "label": "Are you a veteran?", "type": "yes_no"},
    {"key": "start", "label": "When can you start?", "type": "date"},
    {"key": "hours", "label": "Hours a week", "type": "number"},
    {"key": "shift", "label": "Shift", "type": "choice", "options": ["day", "night"]},
    {"key": "skills", "label": "Skills", "type": "multi_choice",
     "options": ["welding", "driving", "cooking"]},
]


def fields(exc: pytest.ExceptionInfo[InvalidInput]) -> set[str]:
    return {e.field for e in exc.value.errors}


def test_questions_are_typed_and_checked() -> None:
    questions = check_questions(QUESTIONS)
    assert [q.type for q in questions] == ["text", "yes_no", "date", "number", "choice",
                                           "multi_choice"]
    assert questions[4] == Question("shift", "Shift", "choice", False, ("day", "night"))
    with pytest.raises(InvalidInput) as caught:
        check_questions([
            {"key": "Goal!", "label": "x", "type": "text"},
            {"key": "a", "label": "", "type": "essay"},
            {"key": "a", "label": "again", "type": "choice", "options": []},
            {"key": "b", "label": "b", "type": "text", "options": ["x"], "required": "yes"},
            "not an object",
        ])
    assert fields(caught) == {"questions.0.key", "questions.1.label", "questions.1.type",
                              "questions.2.key", "questions.2.options", "questions.3.options",
                              "questions.3.required", "questions.4"}
    with pytest.raises(InvalidInput):
        check_questions({"key": "a"})
    with pytest.raises(InvalidInput):
        check_questions([{"key": f"q{i}", "label": "x", "type": "text"} for i in range(51)])


def test_answers_follow_their_questions() -> None:
    questions = check_questions(QUESTIONS)
    answers = check_answers(questions, {
        "goal": " A job in welding ", "veteran": False, "start": "2027-01-04", "hours": 30,
        "shift": "day", "skills": ["welding", "welding", "driving"]}, today=TODAY)
    assert answers == {"goal": "A job in welding", "veteran": False, "start": "2027-01-04",
                       "hours": 30, "shift": "day", "skills": ["welding", "driving"]}
    assert check_answers(questions, {"goal": "x"}, today=TODAY) == {"goal": "x"}
    bad: dict[str, Any] = {"veteran": "yes", "start": "next week", "hours": "thirty",
                           "shift": "evening", "skills": ["juggling"], "extra": 1}
    with pytest.raises(InvalidInput) as caught:
        check_answers(questions, bad, today=TODAY)
    assert fields(caught) == {"answers", "answers.goal", "answers.veteran", "answers.start",
                              "answers.hours", "answers.shift", "answers.skills"}
    with pytest.raises(InvalidInput):
        check_answers(questions, ["goal"], today=TODAY)


def test_a_program_is_checked_whole() -> None:
    change = check_program("job-club", "Job Club", None, True, QUESTIONS, questions_given=True)
    assert change.questions is not None and len(change.questions) == 6
    assert check_program("job-club", "Job Club", "", False, None,
                         questions_given=False).questions is None
    with pytest.raises(InvalidInput) as caught:
        check_program("Job Club", "", 5, "yes", [{"key": "1"}], questions_given=True)
    assert fields(caught) >= {"code", "name", "description", "open_for_applications",
                              "questions.0.key"}


def test_reference_entries() -> None:
    assert check_reference_entry("new-county", " New ", True).name == "New"
    with pytest.raises(InvalidInput) as caught:
        check_reference_entry("Bad Code", "", "no")
    assert fields(caught) == {"code", "name", "retired"}


def test_staff_move_participants_forward_only() -> None:
    enrolled = check_status_change("applied", "enrolled", "2026-11-30", "eligible", None,
                                   today=TODAY, enrolled_on=None, status_on=date(2026, 11, 1))
    assert enrolled.status == "enrolled" and enrolled.on == date(2026, 11, 30)
    exited = check_status_change("enrolled", "exited", "2026-12-01", "completed", "done",
                                 today=TODAY, enrolled_on=date(2026, 11, 30),
                                 status_on=date(2026, 11, 30))
    assert exited.reason == "completed"
    cases = [
        (("exited", "enrolled", "2026-11-30", None), {"status"}),
        (("enrolled", "enrolled", "2026-11-30", None), {"status"}),
        (("invited", "applied", "2026-11-30", None), {"status"}),
        (("enrolled", "exited", "2026-12-02", "completed"), {"on"}),
        (("enrolled", "exited", "2026-10-01", "completed"), {"on"}),
        (("enrolled", "exited", "2026-11-30", "bored"), {"reason"}),
        (("enrolled", "exited", None, None), {"on", "reason"}),
    ]
    for (current, status, on, reason), expected in cases:
        with pytest.raises(InvalidInput) as caught:
            check_status_change(current, status, on, reason, None, today=TODAY,
                                enrolled_on=date(2026, 11, 1), status_on=date(2026, 11, 1))
        assert fields(caught) == expected, (current, status, on, reason)


def test_cursors_are_opaque_and_checked() -> None:
    cursor = encode_cursor("oneil", "marcus", "4b7c")
    assert decode_cursor(cursor, 3) == ["oneil", "marcus", "4b7c"]
    for bad in ("", "!!!", encode_cursor("a"), encode_cursor([1], 2, 3), "x" * 600,
                encode_cursor(True, 1, 2)):
        with pytest.raises(InvalidInput) as caught:
            decode_cursor(bad, 3)
        assert fields(caught) == {"cursor"}


def test_the_handout_escapes_and_says_what_to_do() -> None:
    page = handout.render(
        first_name="<script>", last_name="O'Neil", username="moneil4821",
        temporary_password="K7M4-R2T9-X3A8-H5P6",
        password_expires_at="2026-12-08T10:00:00+00:00",
        signin_url="https://example.org/signin?a=1&b=2", institution="Kewanee")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "moneil4821" in page and "K7M4-R2T9-X3A8-H5P6" in page
    assert "https://example.org/signin?a=1&amp;b=2" in page
    assert "choose a new password" in page and "December 08, 2026" in page
    linked = handout.render(first_name="A", last_name="B", username="ab1",
                            temporary_password=None, password_expires_at=None,
                            signin_url="https://example.org", institution="Kewanee")
    assert "Use the password you already have" in linked
