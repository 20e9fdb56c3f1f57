"""The Add Customer (Returning Citizens) form's rules, as plain code.

Every broken rule of a form comes back at once, each naming its field; no
reason repeats the value it judges (an SSN must never be echoed). The SSN is
checked for shape and passed to identity; nothing here keeps it. The rules of a
later correction (PATCH) are in ``enrollment.corrections``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, ClassVar

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from enrollment.domain.programs import (
    Body,
    FieldError,
    ReferenceKind,
    parse_date,
    required_text,
    rule,
    single,
)
from shared.rules.dates import date_of_birth_reason
from shared.rules.ssn import SSN_FORMAT_REASON as SSN_FORMAT_REASON
from shared.rules.ssn import SSN_UNISSUED_REASON as SSN_UNISSUED_REASON
from shared.rules.ssn import ssn_issuable
from shared.servicekit.logs import redact

FORM_FIELDS: tuple[str, ...] = (
    "parent_institution", "idoc_number", "idoc_number_confirmation", "first_name",
    "last_name", "ssn", "ssn_confirmation", "date_of_birth", "counties_of_commitment",
    "msr_date", "msr_county", "offenses", "enrollment_date",
)
DECISION_FIELDS: tuple[str, ...] = ("link_account_id", "rejected_account_ids")
# What PATCH may change: the enrollment's facts. Names and date of birth belong
# to the customer's account in identity; the SSN is never held here.
PATCH_FIELDS: tuple[str, ...] = (
    "parent_institution", "idoc_number", "idoc_number_confirmation", "counties_of_commitment",
    "msr_date", "msr_county", "offenses", "enrollment_date",
)
NAME_MAX = 100
MAX_COUNTIES = 102
MAX_OFFENSES = 50
MAX_REJECTED = 20
_IDOC = re.compile(r"[A-Za-z][0-9]{5}")
_SSN = re.compile(r"([0-9]{3})-([0-9]{2})-([0-9]{4})")
IDOC_REASON = "must be one letter followed by five digits, e.g. R12345"
# (kind, code) -> retired?
Known = Mapping[tuple[str, str], bool]


@dataclass(frozen=True)
class Intake:
    """A valid form. ``ssn`` is ``XXX-XX-XXXX`` for identity only, kept out of the repr."""

    institution: str
    idoc_number: str
    first_name: str
    last_name: str
    date_of_birth: date
    counties: tuple[str, ...]
    msr_date: date
    msr_county: str | None
    offenses: tuple[str, ...]
    enrollment_date: date
    ssn: str | None = field(default=None, repr=False)

    def match_query(self) -> dict[str, Any]:
        """What identity's matcher is asked (the SSN only when given), as sent."""
        query: dict[str, Any] = {
            "first_name": self.first_name, "last_name": self.last_name,
            "date_of_birth": self.date_of_birth.isoformat(), "idoc_number": self.idoc_number,
        }
        if self.ssn:
            query["ssn"] = self.ssn
        return query


@dataclass(frozen=True)
class Decision:
    """Step 2's choice: link an accurate match, or create after rejecting the rest."""

    link_account_id: uuid.UUID | None
    rejected_account_ids: tuple[uuid.UUID, ...]


def normalize_idoc(value: str) -> str:
    """``r12345`` -> ``R12345``; ValueError (not echoing it) when it is not an IDOC number."""
    text = value.strip()
    if not _IDOC.fullmatch(text):
        raise ValueError(IDOC_REASON)
    return text.upper()


def check_ssn(value: str) -> str:
    """``XXX-XX-XXXX`` of a number the SSA issues; ValueError with a fixed reason otherwise."""
    match = _SSN.fullmatch(value.strip())
    if match is None:
        raise ValueError(SSN_FORMAT_REASON)
    area, group, serial = match.groups()
    if not ssn_issuable(area + group + serial):
        raise ValueError(SSN_UNISSUED_REASON)
    return f"{area}-{group}-{serial}"


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def unknown_fields(raw: Mapping[str, Any], allowed: Collection[str]) -> list[FieldError]:
    """One error per field the form does not have; the name is masked like any caller text."""
    return [
        FieldError(redact(str(name))[:64], "is not a field of this form")
        for name in raw if name not in allowed
    ]


def mentioned_codes(raw: Mapping[str, Any]) -> list[tuple[ReferenceKind, str]]:
    """The reference codes a form (or a patch) names, to look up before checking it."""
    found: list[tuple[ReferenceKind, str]] = []
    if isinstance(raw.get("parent_institution"), str):
        found.append(("institutions", raw["parent_institution"].strip()))
    if isinstance(raw.get("msr_county"), str):
        found.append(("counties", raw["msr_county"].strip()))
    for name, kind in (("counties_of_commitment", "counties"), ("offenses", "offenses")):
        values = raw.get(name)
        if isinstance(values, list):
            found += [(kind, v.strip()) for v in values[:200] if isinstance(v, str)]  # type: ignore[misc]
    return found


def offered_code(
    value: Any, name: str, kind: str, known: Known, errors: list[FieldError],
    keep: Collection[str] = (),
) -> str | None:
    """An offered code; a retired one only when ``keep`` (the record already has it)."""
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be a code from the reference list"))
        return None
    code = value.strip()
    retired = known.get((kind, code))
    if retired is None:
        errors.append(FieldError(name, f"is not a code from the {kind} list"))
        return None
    if retired and code not in keep:
        errors.append(FieldError(name, "is retired and no longer offered"))
        return None
    return code


def offered_codes(
    value: Any, name: str, kind: str, known: Known, errors: list[FieldError], *,
    required: bool, max_items: int, keep: Collection[str] = (),
) -> tuple[str, ...] | None:
    if value is None or (isinstance(value, list) and not value):
        if required:
            errors.append(FieldError(name, "needs at least one entry"))
            return None
        return ()
    if not isinstance(value, list):
        errors.append(FieldError(name, "must be a list of codes"))
        return None
    if len(value) > max_items:
        errors.append(FieldError(name, f"must have at most {max_items} entries"))
        return None
    before = len(errors)
    codes = [offered_code(v, f"{name}.{i}", kind, known, errors, keep)
             for i, v in enumerate(value)]
    if len(errors) > before:
        return None
    return tuple(dict.fromkeys(c for c in codes if c is not None))  # duplicates dropped


def idoc_pair(
    raw: Mapping[str, Any], errors: list[FieldError], *, required: bool = True
) -> str | None:
    value, confirmation = raw.get("idoc_number"), raw.get("idoc_number_confirmation")
    idoc = None
    if blank(value):
        if required:
            errors.append(FieldError("idoc_number", "is required"))
    elif not isinstance(value, str):
        errors.append(FieldError("idoc_number", IDOC_REASON))
    else:
        try:
            idoc = normalize_idoc(value)
        except ValueError as exc:
            errors.append(FieldError("idoc_number", str(exc)))
    if blank(confirmation):
        if required or not blank(value):
            errors.append(FieldError("idoc_number_confirmation", "is required"))
    elif not isinstance(confirmation, str) or (
        isinstance(value, str) and confirmation.strip().upper() != (idoc or value.strip().upper())
    ):
        errors.append(FieldError("idoc_number_confirmation", "must equal idoc_number"))
    return idoc


def _ssn_pair(raw: Mapping[str, Any], errors: list[FieldError]) -> str | None:
    value, confirmation = raw.get("ssn"), raw.get("ssn_confirmation")
    ssn = None
    if not blank(value):
        if not isinstance(value, str):
            errors.append(FieldError("ssn", SSN_FORMAT_REASON))
        else:
            try:
                ssn = check_ssn(value)
            except ValueError as exc:
                errors.append(FieldError("ssn", str(exc)))
    # The form's second SSN box: optional, and when filled it must agree.
    if not blank(confirmation) and (
        blank(value) or not isinstance(confirmation, str) or not isinstance(value, str)
        or confirmation.strip() != (ssn or value.strip())
    ):
        errors.append(FieldError("ssn_confirmation", "must equal ssn"))
    return ssn


def not_before_birth(
    day: date | None, name: str, birth: date | None, errors: list[FieldError]
) -> None:
    if day is not None and birth is not None and day < birth:
        errors.append(FieldError(name, "must not be before the date of birth"))


# -- the form as a pydantic model ----------------------------------------------------------
# The same models document the routes and validate their bodies. Each field's rules run
# in its validator; the rules that need today's date or the reference codes read them from
# the validation context; the rules between fields run in one wrap validator that also
# gathers every field's errors, so one InvalidInput names every broken rule at once.


def _ctx(info: ValidationInfo) -> tuple[date, Known]:
    context = info.context or {}
    return context["today"], context["known"]


def _code_of(kind: ReferenceKind) -> Callable[[Any, ValidationInfo], str]:
    def code(value: Any, info: ValidationInfo) -> str:
        _, known = _ctx(info)
        found = single(lambda e: offered_code(value, "", kind, known, e))
        assert found is not None
        return found
    return code


def _codes(value: Any, *, required: bool, max_items: int) -> Any:
    if value is None or (isinstance(value, list) and not value):
        if required:
            raise rule("needs at least one entry")
        return []
    if not isinstance(value, list):
        raise rule("must be a list of codes")
    if len(value) > max_items:
        raise rule(f"must have at most {max_items} entries")
    return value


def _date(value: Any, *, required: bool) -> date | None:
    return single(lambda e: parse_date(value, "", e, required=required))


def _uuid_item(value: Any) -> uuid.UUID:
    found = single(lambda e: _uuid(value, "", e))
    assert found is not None
    return found


CountyCode = Annotated[str, BeforeValidator(_code_of("counties"))]
OffenseCode = Annotated[str, BeforeValidator(_code_of("offenses"))]
AccountId = Annotated[uuid.UUID, BeforeValidator(_uuid_item)]


class AddCustomerForm(Body):
    """The Add Customer form. Codes come from /v1/reference/...; every field marked
    required in the description is needed."""

    ORDERED: ClassVar[bool] = True
    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": [
        "parent_institution", "idoc_number", "idoc_number_confirmation", "first_name",
        "last_name", "date_of_birth", "counties_of_commitment", "msr_date",
        "enrollment_date"]})
    parent_institution: str = Field(None, validate_default=True,
                                    description="institution code, e.g. kewanee-lsrc")
    idoc_number: str = Field(None, validate_default=True,
                             description="a letter and five digits, e.g. R12345")
    idoc_number_confirmation: str | None = Field(None, description="equal to idoc_number")
    first_name: str = Field(None, validate_default=True)
    last_name: str = Field(None, validate_default=True)
    ssn: str | None = Field(None, description="XXX-XX-XXXX; optional, helps the match; "
                            "passed to identity, never stored here")
    ssn_confirmation: str | None = Field(None, description="optional; equal to ssn")
    date_of_birth: date = Field(None, validate_default=True)
    counties_of_commitment: tuple[CountyCode, ...] = Field(
        None, validate_default=True, description="county codes")
    msr_date: date = Field(None, validate_default=True,
                           description="Mandatory Supervised Release date")
    msr_county: str | None = Field(None, description="county code of the MSR")
    offenses: tuple[OffenseCode, ...] = Field(None, validate_default=True,
                                              description="offense codes; may be left out")
    enrollment_date: date = Field(None, validate_default=True,
                                  description="not in the future")

    @field_validator("parent_institution", mode="before")
    @classmethod
    def _institution(cls, value: Any, info: ValidationInfo) -> str:
        if blank(value):
            raise rule("is required")
        return _code_of("institutions")(value, info)

    @field_validator("idoc_number", mode="before")
    @classmethod
    def _idoc(cls, value: Any) -> str:
        if blank(value):
            raise rule("is required")
        if not isinstance(value, str):
            raise rule(IDOC_REASON)
        try:
            return normalize_idoc(value)
        except ValueError as exc:
            raise rule(str(exc)) from None

    @field_validator("idoc_number_confirmation", "ssn_confirmation", mode="before")
    @classmethod
    def _confirmation(cls, value: Any) -> Any:
        return None  # checked against its field in _across, whatever was sent

    @field_validator("first_name", "last_name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        return required_text(value, NAME_MAX)

    @field_validator("ssn", mode="before")
    @classmethod
    def _ssn(cls, value: Any) -> str | None:
        if blank(value):
            return None
        if not isinstance(value, str):
            raise rule(SSN_FORMAT_REASON)
        try:
            return check_ssn(value)
        except ValueError as exc:
            raise rule(str(exc)) from None

    @field_validator("date_of_birth", mode="before")
    @classmethod
    def _birth(cls, value: Any, info: ValidationInfo) -> date:
        birth = _date(value, required=True)
        assert birth is not None
        today, _ = _ctx(info)
        if (reason := date_of_birth_reason(birth, today)) is not None:
            raise rule(reason)
        return birth

    @field_validator("msr_date", mode="before")
    @classmethod
    def _msr(cls, value: Any) -> date:
        day = _date(value, required=True)
        assert day is not None
        return day

    @field_validator("enrollment_date", mode="before")
    @classmethod
    def _enrolled(cls, value: Any, info: ValidationInfo) -> date:
        day = _date(value, required=True)
        assert day is not None
        today, _ = _ctx(info)
        if day > today:
            raise rule("must not be in the future")
        return day

    @field_validator("counties_of_commitment", mode="before")
    @classmethod
    def _counties(cls, value: Any) -> Any:
        return _codes(value, required=True, max_items=MAX_COUNTIES)

    @field_validator("offenses", mode="before")
    @classmethod
    def _offenses(cls, value: Any) -> Any:
        return _codes(value, required=False, max_items=MAX_OFFENSES)

    @field_validator("counties_of_commitment", "offenses", mode="after")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))  # duplicates dropped

    @field_validator("msr_county", mode="before")
    @classmethod
    def _msr_county(cls, value: Any, info: ValidationInfo) -> str | None:
        return None if blank(value) else _code_of("counties")(value, info)

    @classmethod
    def _before(cls, raw: Mapping[str, Any], info: ValidationInfo) -> list[FieldError]:
        return unknown_fields(raw, cls.model_fields)

    @classmethod
    def _between(cls, raw: Mapping[str, Any], info: ValidationInfo) -> list[FieldError]:
        errors: list[FieldError] = []
        idoc_pair(raw, errors)
        _ssn_pair(raw, errors)
        errors = [e for e in errors if e.field in ("idoc_number_confirmation",
                                                   "ssn_confirmation")]
        quiet: list[FieldError] = []
        birth = parse_date(raw.get("date_of_birth"), "date_of_birth", quiet, required=True)
        if birth is not None and date_of_birth_reason(birth, _ctx(info)[0]) is not None:
            birth = None  # its own error says why; no other date is judged against it
        for name in ("msr_date", "enrollment_date"):
            day = parse_date(raw.get(name), name, quiet, required=True)
            not_before_birth(day, name, birth, errors)
        return errors


class AddCustomerSubmit(AddCustomerForm):
    """Step 2: the form and the decision."""

    model_config = ConfigDict(extra="forbid")
    link_account_id: uuid.UUID | None = Field(
        None, description="the candidate that is an accurate match")
    rejected_account_ids: tuple[AccountId, ...] = Field(
        (), description="candidates that are not this person")

    @field_validator("link_account_id", mode="before")
    @classmethod
    def _link(cls, value: Any) -> uuid.UUID | None:
        return None if value is None else _uuid_item(value)

    @field_validator("rejected_account_ids", mode="before")
    @classmethod
    def _rejected(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list) or len(value) > MAX_REJECTED:
            raise PydanticCustomError(
                "form_rule", f"must be a list of at most {MAX_REJECTED} account ids")
        return value

    @field_validator("rejected_account_ids", mode="after")
    @classmethod
    def _rejected_once(cls, value: tuple[uuid.UUID, ...]) -> tuple[uuid.UUID, ...]:
        return tuple(dict.fromkeys(value))

    @classmethod
    def _between(cls, raw: Mapping[str, Any], info: ValidationInfo) -> list[FieldError]:
        errors = super()._between(raw, info)
        link, rejected = raw.get("link_account_id"), raw.get("rejected_account_ids")
        if isinstance(link, str) and isinstance(rejected, list) and link in rejected:
            errors.append(FieldError("link_account_id", "is also among rejected_account_ids"))
        return errors


def _intake(form: AddCustomerForm) -> Intake:
    return Intake(form.parent_institution, form.idoc_number, form.first_name, form.last_name,
                  form.date_of_birth, form.counties_of_commitment, form.msr_date,
                  form.msr_county, form.offenses, form.enrollment_date, form.ssn)


def check_form(raw: Any, *, today: date, known: Known) -> Intake:
    """The whole form checked at once (its model): a clean Intake, or InvalidInput naming
    every bad field."""
    form = AddCustomerForm.model_validate(raw, context={"today": today, "known": known})
    return _intake(form)


def _uuid(value: Any, name: str, errors: list[FieldError]) -> uuid.UUID | None:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    errors.append(FieldError(name, "must be an account id (a UUID)"))
    return None


def check_submission(raw: Any, *, today: date, known: Known) -> tuple[Intake, Decision]:
    """Step 2: the form and the decision, every broken rule of both at once."""
    form = AddCustomerSubmit.model_validate(raw, context={"today": today, "known": known})
    return _intake(form), Decision(form.link_account_id, form.rejected_account_ids)


def fingerprint(intake: Intake, decision: Decision) -> bytes:
    """The request's fingerprint for its Idempotency-Key. The SSN is left out (a plain hash
    of it could be reversed); identity's keyed fingerprint of the account request covers it."""
    doc = {
        "institution": intake.institution, "idoc_number": intake.idoc_number,
        "first_name": intake.first_name, "last_name": intake.last_name,
        "date_of_birth": intake.date_of_birth.isoformat(), "counties": list(intake.counties),
        "msr_date": intake.msr_date.isoformat(), "msr_county": intake.msr_county,
        "offenses": sorted(intake.offenses), "enrollment_date": intake.enrollment_date.isoformat(),
        "has_ssn": intake.ssn is not None,
        "link": str(decision.link_account_id) if decision.link_account_id else None,
        "rejected": sorted(map(str, decision.rejected_account_ids)),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).digest()


def unsettled(candidate_ids: Iterable[uuid.UUID], decision: Decision) -> list[uuid.UUID]:
    """Candidates the request neither linked nor rejected."""
    settled = {*decision.rejected_account_ids}
    if decision.link_account_id is not None:
        settled.add(decision.link_account_id)
    return [c for c in candidate_ids if c not in settled]
