"""Enrollment rules as plain code: errors, statuses, programs and their questions,
reference entries, paging cursors.

No I/O here. Reasons given to callers never repeat the value they judge. A request
body's model (``Body`` and its subclasses) both documents and validates it.
The Add Customer form's rules are in ``enrollment.intake``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.rules.text import CONTROL_REASON, has_control_characters
from shared.schemas.enrollment import ExitReason

# re-exported: the service's modules take them from here
from shared.servicekit.errors import Conflict as Conflict
from shared.servicekit.errors import DomainError as DomainError
from shared.servicekit.errors import FieldError as FieldError
from shared.servicekit.errors import Forbidden as Forbidden
from shared.servicekit.errors import InvalidInput as InvalidInput
from shared.servicekit.errors import NotFound as NotFound
from shared.servicekit.paging import MAX_CURSOR_LENGTH

# --- Errors ----------------------------------------------------------------------


# NotFound (also: not visible to the caller, a program's people are hidden from staff
# not authorized for it), Forbidden and Conflict are the kit's (shared.servicekit.errors).


class PossibleDuplicates(Conflict):
    """identity knows accounts that may be this person: link one, or reject each."""

    def __init__(self, reason: str, candidates: Sequence[Any]) -> None:
        super().__init__(None, reason, code="possible-duplicates")
        self.candidates = list(candidates)


class IdempotencyKeyReused(Conflict):
    """The Idempotency-Key was used before for a different request (answered 422)."""

    def __init__(self) -> None:
        super().__init__(None, "this Idempotency-Key was used for a different request",
                         code="idempotency-key-reused")


class IdempotencyKeyRequired(DomainError):
    """Add Customer's submit came without an Idempotency-Key (answered 428): without one,
    an answer lost after identity made the account could not be finished by a retry."""

    code = "idempotency-key-required"
    reason = ("send an Idempotency-Key header (one value per Add Customer form, the same "
              "on every retry of it)")


# --- Request bodies validated by their models ------------------------------------
# A route's body model documents it and validates it. Each field's rule runs in its
# validator (reporting the same reasons as the plain checks), what a rule needs from the
# caller (today, the path's code, the current state) comes in the validation context, and
# the rules between fields run in ``_between``. One wrap validator gathers every error, so
# one InvalidInput names every broken rule at once.

_T = TypeVar("_T")


def rule(reason: str) -> PydanticCustomError:
    """A field's broken rule, with the reason the caller sees."""
    return PydanticCustomError("form_rule", reason.replace("{", "{{"))


def single(check: Callable[[list[FieldError]], _T]) -> _T:
    """Run a rule that reports into a list; its one reason raised for the field."""
    errors: list[FieldError] = []
    value = check(errors)
    if errors:
        raise rule(errors[0].reason)
    return value


def several(errors: Sequence[FieldError]) -> PydanticCustomError:
    """Several broken rules of one field's parts, each with its own name."""
    return PydanticCustomError("form_rules", "several rules", {"errors": tuple(errors)})


def every(check: Callable[[list[FieldError]], _T]) -> _T:
    """Run a rule that reports into a list under the fields' own names; every error it
    found raised for the field."""
    errors: list[FieldError] = []
    value = check(errors)
    if errors:
        raise several(errors)
    return value


def field_errors(e: Any) -> list[FieldError]:
    """One of pydantic's errors as ours."""
    name = ".".join(str(part) for part in e["loc"]) or "body"
    if e["type"] == "form_rules":
        return list(e["ctx"]["errors"])
    if e["type"] == "form_rule":
        return [FieldError(name, str(e["msg"]))]
    return [FieldError(name, "is not valid")]  # the declared type, after our own rules


def context(info: ValidationInfo) -> Mapping[str, Any]:
    return info.context or {}


class Body(BaseModel):
    """A request body checked by its model; a field it does not have is named with
    ``UNKNOWN`` (before any other error, as the plain checks did)."""

    model_config = ConfigDict(extra="forbid")
    UNKNOWN: ClassVar[str] = "is not a field of this form"
    ORDERED: ClassVar[bool] = False  # errors in the order of the fields (unknown ones first)

    @model_validator(mode="wrap")
    @classmethod
    def _gather(cls, data: Any, handler: ModelWrapValidatorHandler[Any],
                info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            raise InvalidInput([FieldError("body", "must be a JSON object")])
        errors = cls._before(data, info)
        model = None
        try:
            model = handler({k: v for k, v in data.items() if k in cls.model_fields})
        except ValidationError as exc:
            errors += [f for e in exc.errors() for f in field_errors(e)]
        errors += cls._between(data, info)
        if errors and cls.ORDERED:
            order = {name: i for i, name in enumerate(cls.model_fields)}
            errors.sort(key=lambda e: order.get(e.field.split(".")[0], -1))
        if errors:
            raise InvalidInput(errors)
        return model

    @classmethod
    def _before(cls, raw: Mapping[str, Any], info: ValidationInfo) -> list[FieldError]:
        return [FieldError(str(k)[:64], cls.UNKNOWN) for k in raw if k not in cls.model_fields]

    @classmethod
    def _between(cls, raw: Mapping[str, Any], info: ValidationInfo) -> list[FieldError]:
        return []


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise rule("must be true or false")
    return value


# --- Statuses --------------------------------------------------------------------

Status = Literal["invited", "applied", "enrolled", "exited"]
STATUSES: tuple[str, ...] = get_args(Status)
EXIT_REASONS: tuple[str, ...] = get_args(ExitReason)
# invited --(the customer applies)--> applied; staff enroll and exit.
STAFF_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "invited": frozenset({"enrolled", "exited"}),
    "applied": frozenset({"enrolled", "exited"}),
    "enrolled": frozenset({"exited"}),
    "exited": frozenset(),
}
REASON_MAX = 500


@dataclass(frozen=True)
class StatusChange:
    status: Status
    on: date
    reason: str | None = None  # for an exit: one of EXIT_REASONS
    note: str | None = None


class StatusBody(Body):
    """A staff member's move of a participant (POST .../participants/{id}/status); the
    enrollment's current status and dates, and today, come in the validation context."""

    model_config = ConfigDict(json_schema_extra={"required": ["status", "on"]})
    UNKNOWN: ClassVar[str] = "is not a field of a status change"
    on: date = Field(None, validate_default=True,
                     description="YYYY-MM-DD, not in the future")  # judged first, as before
    status: Literal["enrolled", "exited"] = Field(None, validate_default=True)
    reason: str | None = Field(None, description="for an exit: " + ", ".join(EXIT_REASONS))
    note: str | None = None

    @field_validator("on", mode="before")
    @classmethod
    def _on(cls, value: Any, info: ValidationInfo) -> date:
        day = single(lambda e: parse_date(value, "", e, required=True))
        assert day is not None
        if day > context(info)["today"]:
            raise rule("must not be in the future")
        if day < context(info)["status_on"]:
            raise rule("must not be before the current status's date")
        return day

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any, info: ValidationInfo) -> str:
        current = context(info)["current"]
        if value not in ("enrolled", "exited"):
            raise rule("must be enrolled or exited")
        if value not in STAFF_TRANSITIONS.get(current, frozenset()):
            raise rule(f"cannot change from {current} to {value}")
        return str(value)

    @field_validator("reason", "note", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        return single(lambda e: optional_text(value, "", e, REASON_MAX))

    @classmethod
    def _between(cls, raw: Mapping[str, Any], info: ValidationInfo) -> list[FieldError]:
        errors: list[FieldError] = []
        quiet: list[FieldError] = []
        status, enrolled_on = raw.get("status"), context(info)["enrolled_on"]
        day = parse_date(raw.get("on"), "on", quiet, required=True)
        if (day is not None and status == "exited" and enrolled_on
                and context(info)["status_on"] <= day <= context(info)["today"]
                and day < enrolled_on):
            errors.append(FieldError("on", "must not be before the current status's date"))
        reason = optional_text(raw.get("reason"), "reason", quiet, REASON_MAX)
        if status == "exited" and reason not in EXIT_REASONS:
            errors.append(FieldError("reason", f"must be one of {', '.join(EXIT_REASONS)}"))
        return errors


def check_status_body(
    current: str, raw: Any, *, today: date, enrolled_on: date | None, status_on: date,
) -> StatusChange:
    """A staff member's move of a participant, or InvalidInput naming every bad field."""
    body = StatusBody.model_validate(raw, context={
        "current": current, "today": today, "enrolled_on": enrolled_on,
        "status_on": status_on})
    return StatusChange(body.status, body.on, body.reason, body.note)


def check_status_change(
    current: str, status: Any, on: Any, reason: Any, note: Any, *,
    today: date, enrolled_on: date | None, status_on: date,
) -> StatusChange:
    return check_status_body(
        current, {"status": status, "on": on, "reason": reason, "note": note},
        today=today, enrolled_on=enrolled_on, status_on=status_on)


# --- Small parsers shared by the rules ---------------------------------------------

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(value: Any, name: str, errors: list[FieldError], *, required: bool) -> date | None:
    """A ``YYYY-MM-DD`` date; a missing or blank one is an error only when required."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append(FieldError(name, "is required"))
        return None
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        errors.append(FieldError(name, "must be a date in the format YYYY-MM-DD"))
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors.append(FieldError(name, "is not a real date"))
        return None


def clean_text(
    value: Any, name: str, errors: list[FieldError], max_length: int, *, required: bool = True
) -> str | None:
    """Trimmed, NFC text of 1..max_length characters without control characters."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append(FieldError(name, "is required"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be text"))
        return None
    text = unicodedata.normalize("NFC", value.strip())
    if len(text) > max_length:
        errors.append(FieldError(name, f"must be at most {max_length} characters"))
        return None
    if has_control_characters(text):
        errors.append(FieldError(name, CONTROL_REASON))
        return None
    return text


def required_text(value: Any, max_length: int) -> str:
    """clean_text's rule for a required field in a validator: its one reason raised."""
    text = single(lambda e: clean_text(value, "", e, max_length))
    assert text is not None
    return text


def optional_text(value: Any, name: str, errors: list[FieldError], max_length: int) -> str | None:
    return clean_text(value, name, errors, max_length, required=False)


# --- Codes, programs, reference entries -------------------------------------------

CODE_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
PROGRAM_CODE = re.compile(r"[a-z0-9][a-z0-9-]{1,63}")
REFERENCE_KINDS = ("institutions", "counties", "offenses")
ReferenceKind = Literal["institutions", "counties", "offenses"]
RETURNING_CITIZENS = "returning-citizens"
NAME_MAX = 200
DESCRIPTION_MAX = 5000


CODE_REASON = "must be lower-case letters, digits and dashes, starting with a letter or digit"


@dataclass(frozen=True)
class ReferenceChange:
    name: str
    retired: bool


class ReferenceBody(Body):
    """A reference entry (PUT /v1/reference/{kind}/{code}); the path's code comes in the
    validation context (``code``)."""

    model_config = ConfigDict(json_schema_extra={"required": ["name"]})
    UNKNOWN: ClassVar[str] = "is not a field of a reference entry"
    name: str = Field(None, validate_default=True)
    retired: bool = False

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        return required_text(value, NAME_MAX)

    @field_validator("retired", mode="before")
    @classmethod
    def _retired(cls, value: Any) -> bool:
        return _flag(value)

    @classmethod
    def _before(cls, raw: Mapping[str, Any], info: ValidationInfo) -> list[FieldError]:
        errors = super()._before(raw, info)
        if not CODE_PATTERN.fullmatch(context(info).get("code", "")):
            errors.append(FieldError("code", CODE_REASON))
        return errors


def check_reference_body(code: str, raw: Any) -> ReferenceChange:
    """A reference entry's body, or InvalidInput naming every bad field (and a bad code)."""
    body = ReferenceBody.model_validate(raw, context={"code": code})
    return ReferenceChange(body.name, body.retired)


def check_reference_entry(code: str, name: Any, retired: Any) -> ReferenceChange:
    return check_reference_body(code, {"name": name, "retired": retired})


# --- Application questions -------------------------------------------------------

QuestionType = Literal["text", "yes_no", "date", "number", "choice", "multi_choice"]
QUESTION_TYPES: tuple[str, ...] = get_args(QuestionType)
QUESTION_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_QUESTIONS = 50
MAX_OPTIONS = 50
LABEL_MAX = 500
ANSWER_TEXT_MAX = 5000


@dataclass(frozen=True)
class Question:
    key: str
    label: str
    type: QuestionType
    required: bool = False
    options: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "label": self.label, "type": self.type,
                               "required": self.required}
        if self.options:
            out["options"] = list(self.options)
        return out


def check_questions(raw: Any) -> tuple[Question, ...]:
    """A program's typed questions, or InvalidInput naming each bad one (``questions.N.x``)."""
    if not isinstance(raw, list):
        raise InvalidInput([FieldError("questions", "must be a list")])
    if len(raw) > MAX_QUESTIONS:
        raise InvalidInput([FieldError("questions", f"must be at most {MAX_QUESTIONS}")])
    errors: list[FieldError] = []
    out: list[Question] = []
    seen: set[str] = set()
    for i, q in enumerate(raw):
        at = f"questions.{i}"
        if not isinstance(q, dict):
            errors.append(FieldError(at, "must be an object"))
            continue
        key = q.get("key")
        if not isinstance(key, str) or not QUESTION_KEY.fullmatch(key):
            errors.append(FieldError(f"{at}.key", "must be a lower-case name (a-z, 0-9, _)"))
            key = None
        elif key in seen:
            errors.append(FieldError(f"{at}.key", "is used by another question"))
        label = clean_text(q.get("label"), f"{at}.label", errors, LABEL_MAX)
        qtype = q.get("type")
        if qtype not in QUESTION_TYPES:
            errors.append(FieldError(f"{at}.type", f"must be one of {', '.join(QUESTION_TYPES)}"))
        required = q.get("required", False)
        if not isinstance(required, bool):
            errors.append(FieldError(f"{at}.required", "must be true or false"))
        options = q.get("options", [])
        clean_options: list[str] = []
        if qtype in ("choice", "multi_choice"):
            if not isinstance(options, list) or not 1 <= len(options) <= MAX_OPTIONS:
                errors.append(FieldError(
                    f"{at}.options", f"must be a list of 1 to {MAX_OPTIONS} choices"))
            else:
                for j, opt in enumerate(options):
                    text = clean_text(opt, f"{at}.options.{j}", errors, NAME_MAX)
                    if text is not None and text in clean_options:
                        errors.append(FieldError(f"{at}.options.{j}", "is listed twice"))
                    elif text is not None:
                        clean_options.append(text)
        elif options not in ([], None):
            errors.append(FieldError(f"{at}.options", "only choice questions have options"))
        if key is not None:
            seen.add(key)
        if key and label and qtype in QUESTION_TYPES and isinstance(required, bool):
            out.append(Question(key, label, qtype, required, tuple(clean_options)))
    if errors:
        raise InvalidInput(errors)
    return tuple(out)


def questions_from_stored(raw: Sequence[Mapping[str, Any]]) -> tuple[Question, ...]:
    return tuple(
        Question(q["key"], q["label"], q["type"], bool(q.get("required")),
                 tuple(q.get("options", ())))
        for q in raw
    )


def check_answers(questions: Sequence[Question], raw: Any, *, today: date) -> dict[str, Any]:
    """Answers to a program's questions, typed; InvalidInput names each ``answers.<key>``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput([FieldError("answers", "must be an object of answers by question key")])
    errors: list[FieldError] = []
    known = {q.key: q for q in questions}
    unknown = [k for k in raw if k not in known]
    if unknown:
        errors.append(FieldError("answers", f"has {len(unknown)} answer(s) to no question"))
    out: dict[str, Any] = {}
    for q in questions:
        at = f"answers.{q.key}"
        value = raw.get(q.key)
        if value is None or (isinstance(value, str | list) and not value):
            if q.required:
                errors.append(FieldError(at, "is required"))
            continue
        answer = _answer(q, value, at, errors, today)
        if answer is not None:
            out[q.key] = answer
    if errors:
        raise InvalidInput(errors)
    return out


class ApplicationBody(Body):
    """A customer's application (POST /v1/programs/{code}/applications). Checked twice:
    first without context (only ``answers`` may be sent, before the program is looked
    up), then with the program's ``questions`` and ``today`` in the validation context."""

    answers: Annotated[Any, WithJsonSchema({
        "type": "object", "description": "answers by question key"})] = Field(
        default_factory=dict, validate_default=True)

    @field_validator("answers", mode="before")
    @classmethod
    def _answers(cls, value: Any, info: ValidationInfo) -> Any:
        questions = context(info).get("questions")
        if questions is None:
            return value  # the shape only; the answers are judged against the questions
        try:
            return check_answers(questions, value, today=context(info)["today"])
        except InvalidInput as exc:
            raise several(exc.errors) from None

    @classmethod
    def _before(cls, raw: Mapping[str, Any], info: ValidationInfo) -> list[FieldError]:
        if set(raw) - set(cls.model_fields):
            return [FieldError("body", "only answers may be sent")]
        return []


def check_application_shape(raw: Any) -> None:
    """Only answers may be sent (checked before the program is looked up)."""
    ApplicationBody.model_validate(raw)


def check_application(questions: Sequence[Question], raw: Any, *, today: date
                      ) -> dict[str, Any]:
    """The answers to the program's questions, typed; InvalidInput names each bad one."""
    body = ApplicationBody.model_validate(raw, context={"questions": questions,
                                                        "today": today})
    return dict(body.answers)


def _answer(q: Question, value: Any, at: str, errors: list[FieldError], today: date) -> Any:
    if q.type == "text":
        return clean_text(value, at, errors, ANSWER_TEXT_MAX)
    if q.type == "yes_no":
        if isinstance(value, bool):
            return value
        errors.append(FieldError(at, "must be true or false"))
    elif q.type == "number":
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e12:
            return value
        errors.append(FieldError(at, "must be a number"))
    elif q.type == "date":
        day = parse_date(value, at, errors, required=True)
        return day.isoformat() if day else None
    elif q.type == "choice":
        if isinstance(value, str) and value in q.options:
            return value
        errors.append(FieldError(at, "must be one of the question's options"))
    elif q.type == "multi_choice":
        if isinstance(value, list) and all(isinstance(v, str) and v in q.options for v in value):
            return list(dict.fromkeys(value))
        errors.append(FieldError(at, "must be a list of the question's options"))
    return None


@dataclass(frozen=True)
class ProgramChange:
    name: str
    description: str
    open_for_applications: bool
    questions: tuple[Question, ...] | None = field(default=None)  # None: unchanged


class ProgramBody(Body):
    """A program (PUT /v1/programs/{code}); the path's code comes in the validation
    context (``code``)."""

    model_config = ConfigDict(json_schema_extra={"required": ["name"]})
    UNKNOWN: ClassVar[str] = "is not a field of a program"
    name: str = Field(None, validate_default=True)
    description: str = Field("", description=f"at most {DESCRIPTION_MAX} characters")
    open_for_applications: bool = False
    questions: Annotated[tuple[Question, ...] | None, WithJsonSchema({
        "anyOf": [{"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "label": {"type": "string"},
            "type": {"enum": list(QUESTION_TYPES)}, "required": {"type": "boolean"},
            "options": {"type": "array", "items": {"type": "string"}}},
            "required": ["key", "label", "type"]}}, {"type": "null"}]})] = Field(
        None, description="key, label, type (text, yes_no, date, number, choice, "
        "multi_choice), required, options; a changed list is the next version; "
        "left out: unchanged")

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        return required_text(value, NAME_MAX)

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str) or len(value) > DESCRIPTION_MAX:
            raise rule(f"must be text of at most {DESCRIPTION_MAX} characters")
        return value.strip()

    @field_validator("open_for_applications", mode="before")
    @classmethod
    def _open(cls, value: Any) -> bool:
        return _flag(value)

    @field_validator("questions", mode="before")
    @classmethod
    def _questions(cls, value: Any) -> tuple[Question, ...]:
        try:
            return check_questions(value)
        except InvalidInput as exc:
            raise several(exc.errors) from None

    @classmethod
    def _before(cls, raw: Mapping[str, Any], info: ValidationInfo) -> list[FieldError]:
        errors = super()._before(raw, info)
        if not PROGRAM_CODE.fullmatch(context(info).get("code", "")):
            errors.append(FieldError(
                "code", "must be 2 to 64 lower-case letters, digits and dashes"))
        return errors


def check_program_body(code: str, raw: Any) -> ProgramChange:
    """A program's body, or InvalidInput naming every bad field (and a bad code).
    ``questions`` left out: None (unchanged); given (even null), it is checked."""
    body = ProgramBody.model_validate(raw, context={"code": code})
    return ProgramChange(body.name, body.description, body.open_for_applications,
                         body.questions)


def check_program(
    code: str, name: Any, description: Any, open_for_applications: Any, questions: Any,
    *, questions_given: bool,
) -> ProgramChange:
    raw = {"name": name, "description": description,
           "open_for_applications": open_for_applications}
    if questions_given:
        raw["questions"] = questions
    return check_program_body(code, raw)


# --- Paging ------------------------------------------------------------------------

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR = MAX_CURSOR_LENGTH
