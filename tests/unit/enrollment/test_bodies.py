"""Request bodies are validated by the pydantic models that document them: the route's
OpenAPI body schema is the domain model's, and that model gives one InvalidInput naming
every broken rule (unknown fields first, a non-object body named as the body)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from enrollment.app import create_app
from enrollment.domain.corrections import Facts, ReturningCitizenPatch, check_patch
from enrollment.domain.programs import (
    ApplicationBody,
    InvalidInput,
    ProgramBody,
    ReferenceBody,
    StatusBody,
    check_application,
    check_application_shape,
    check_program_body,
    check_questions,
    check_reference_body,
    check_status_body,
)
from enrollment.domain.returning_citizens import AddCustomerForm, AddCustomerSubmit

TODAY = date(2026, 12, 1)


def fields(caught: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [e.field for e in caught.value.errors]


def test_each_route_documents_the_model_that_validates_it() -> None:
    spec = create_app().openapi()
    bodies = {
        ("/v1/programs/{code}", "put"): ProgramBody,
        ("/v1/reference/{kind}/{code}", "put"): ReferenceBody,
        ("/v1/programs/{code}/participants/{enrollment_id}/status", "post"): StatusBody,
        ("/v1/programs/{code}/applications", "post"): ApplicationBody,
        ("/v1/returning-citizens/{enrollment_id}", "patch"): ReturningCitizenPatch,
        ("/v1/returning-citizens/matches", "post"): AddCustomerForm,
        ("/v1/returning-citizens", "post"): AddCustomerSubmit,
    }
    for (path, method), model in bodies.items():
        schema = spec["paths"][path][method]["requestBody"]["content"]["application/json"][
            "schema"]
        assert schema["title"] == model.__name__, path
        assert set(schema["properties"]) == set(model.model_fields), path
        assert schema["additionalProperties"] is False


@pytest.mark.parametrize("raw", [[1, 2], "a body", None, 5])
def test_a_body_that_is_not_an_object_is_named_as_the_body(raw: Any) -> None:
    for check in (lambda: check_reference_body("cook", raw),
                  lambda: check_program_body("job-club", raw),
                  lambda: check_application_shape(raw)):
        with pytest.raises(InvalidInput) as caught:
            check()
        assert fields(caught) == ["body"]


def test_unknown_fields_come_first_with_each_route_s_reason() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_reference_body("Bad Code", {"colour": "red", "name": None})
    assert [(e.field, e.reason) for e in caught.value.errors][:1] == [
        ("colour", "is not a field of a reference entry")]
    assert fields(caught) == ["colour", "code", "name"]
    with pytest.raises(InvalidInput) as caught:
        check_program_body("job-club", {"name": "Job Club", "colour": "red",
                                        "open_for_applications": None})
    assert [e.reason for e in caught.value.errors] == [
        "is not a field of a program", "must be true or false"]
    with pytest.raises(InvalidInput) as caught:
        check_application_shape({"answers": {}, "colour": "red"})
    assert [(e.field, e.reason) for e in caught.value.errors] == [
        ("body", "only answers may be sent")]


def test_a_program_s_questions_are_named_one_by_one() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_program_body("job-club", {"name": "", "questions": [
            {"key": "ok", "label": "Fine", "type": "text"}, {"key": "1", "type": "colour"}]})
    assert fields(caught) == ["name", "questions.1.key", "questions.1.label", "questions.1.type"]
    # questions left out: unchanged; given, even null: checked
    assert check_program_body("job-club", {"name": "Job Club"}).questions is None
    with pytest.raises(InvalidInput) as caught:
        check_program_body("job-club", {"name": "Job Club", "questions": None})
    assert fields(caught) == ["questions"]


def test_a_status_change_reads_the_enrollment_from_the_context() -> None:
    def change(raw: dict[str, Any], current: str = "enrolled") -> Any:
        return check_status_body(current, raw, today=TODAY, enrolled_on=date(2026, 11, 20),
                                 status_on=date(2026, 11, 20))

    done = change({"status": "exited", "on": "2026-11-30", "reason": " completed "})
    assert done.on == date(2026, 11, 30) and done.reason == "completed"
    with pytest.raises(InvalidInput) as caught:
        change({"status": "enrolled", "on": "2026-11-19", "note": 5, "by": "me"})
    assert fields(caught) == ["by", "on", "status", "note"]
    with pytest.raises(InvalidInput) as caught:
        change({"status": "exited", "on": "2026-12-02"}, current="applied")
    assert fields(caught) == ["on", "reason"]


def test_answers_are_checked_against_the_program_s_questions() -> None:
    questions = check_questions([{"key": "goal", "label": "Goal", "type": "text",
                                  "required": True}])
    assert check_application(questions, {"answers": {"goal": " x "}}, today=TODAY) == {
        "goal": "x"}
    for raw in ({}, {"answers": None}):
        with pytest.raises(InvalidInput) as caught:
            check_application(questions, raw, today=TODAY)
        assert fields(caught) == ["answers.goal"]


def test_a_patch_names_every_field_in_the_form_s_order() -> None:
    current = Facts("kewanee-lsrc", "R12345", ("cook",), date(2027, 1, 15), None, (),
                    date(2026, 11, 1))
    known = {("institutions", "kewanee-lsrc"): False, ("counties", "cook"): False}
    with pytest.raises(InvalidInput) as caught:
        check_patch({"offenses": ["x"], "ssn": "n/a", "idoc_number": "R1", "colour": 1,
                     "msr_date": "1970-01-01"}, current, today=TODAY, known=known,
                    date_of_birth=date(1988, 4, 12))
    assert fields(caught) == ["ssn", "colour", "idoc_number", "idoc_number_confirmation",
                              "msr_date", "offenses.0"]
