"""Corrections to a Returning Citizens enrollment (PATCH), as plain code: the facts that
may change, each rule as on the form, and retired codes kept where the record has them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from enrollment.domain.programs import Body, FieldError, context, every, parse_date
from enrollment.domain.returning_citizens import (
    MAX_COUNTIES,
    MAX_OFFENSES,
    Known,
    blank,
    idoc_pair,
    normalize_idoc,
    not_before_birth,
    offered_code,
    offered_codes,
)
from shared.servicekit.logs import redact

ON_THE_ACCOUNT = ("first_name", "last_name", "date_of_birth", "ssn", "ssn_confirmation")


@dataclass(frozen=True)
class Facts:
    """A Returning Citizens enrollment's changeable facts."""

    institution: str
    idoc_number: str
    counties: tuple[str, ...]
    msr_date: date
    msr_county: str | None
    offenses: tuple[str, ...]
    enrollment_date: date


class ReturningCitizenPatch(Body):
    """PATCH /v1/returning-citizens/{id}: the facts to change. A field left out does not
    change; ``msr_county: null`` clears it and ``offenses: []`` removes them all. Retired
    codes the record already has stay valid. The record's facts (``current``), today, the
    reference codes (``known``) and the date of birth come in the validation context."""

    ORDERED: ClassVar[bool] = True
    parent_institution: str | None = None
    idoc_number: str | None = None
    idoc_number_confirmation: str | None = Field(None, description="equal to idoc_number; "
                                                 "needed when idoc_number is sent")
    counties_of_commitment: tuple[str, ...] | None = None
    msr_date: date | None = None
    msr_county: str | None = Field(default=None, description="null clears it")
    offenses: tuple[str, ...] | None = None
    enrollment_date: date | None = None

    @classmethod
    def _before(cls, raw: Mapping[str, Any], info: ValidationInfo) -> list[FieldError]:
        return [FieldError(name, "is changed on the customer's account, not here")
                if name in ON_THE_ACCOUNT
                else FieldError(redact(str(name))[:64], cls.UNKNOWN)
                for name in raw if name in ON_THE_ACCOUNT or name not in cls.model_fields]

    @field_validator("parent_institution", mode="before")
    @classmethod
    def _institution(cls, value: Any, info: ValidationInfo) -> str | None:
        current: Facts = context(info)["current"]
        return every(lambda e: offered_code(value, "parent_institution", "institutions",
                                            context(info)["known"], e,
                                            keep=(current.institution,)))

    @field_validator("idoc_number", "idoc_number_confirmation", mode="before")
    @classmethod
    def _idoc(cls, value: Any) -> str | None:
        try:  # judged with its confirmation in _between
            return normalize_idoc(value) if isinstance(value, str) else None
        except ValueError:
            return None

    @field_validator("counties_of_commitment", mode="before")
    @classmethod
    def _counties(cls, value: Any, info: ValidationInfo) -> tuple[str, ...] | None:
        current: Facts = context(info)["current"]
        return every(lambda e: offered_codes(
            value, "counties_of_commitment", "counties", context(info)["known"], e,
            required=True, max_items=MAX_COUNTIES, keep=current.counties))

    @field_validator("msr_date", mode="before")
    @classmethod
    def _msr(cls, value: Any, info: ValidationInfo) -> date | None:
        def check(errors: list[FieldError]) -> date | None:
            day = parse_date(value, "msr_date", errors, required=True)
            not_before_birth(day, "msr_date", context(info)["date_of_birth"], errors)
            return day
        return every(check)

    @field_validator("msr_county", mode="before")
    @classmethod
    def _msr_county(cls, value: Any, info: ValidationInfo) -> str | None:
        if blank(value):
            return None
        current: Facts = context(info)["current"]
        return every(lambda e: offered_code(
            value, "msr_county", "counties", context(info)["known"], e,
            keep=(current.msr_county,) if current.msr_county else ()))

    @field_validator("offenses", mode="before")
    @classmethod
    def _offenses(cls, value: Any, info: ValidationInfo) -> tuple[str, ...] | None:
        current: Facts = context(info)["current"]
        return every(lambda e: offered_codes(
            value, "offenses", "offenses", context(info)["known"], e, required=False,
            max_items=MAX_OFFENSES, keep=current.offenses))

    @field_validator("enrollment_date", mode="before")
    @classmethod
    def _enrolled(cls, value: Any, info: ValidationInfo) -> date | None:
        def check(errors: list[FieldError]) -> date | None:
            day = parse_date(value, "enrollment_date", errors, required=True)
            if day is not None and day > context(info)["today"]:
                errors.append(FieldError("enrollment_date", "must not be in the future"))
            not_before_birth(day, "enrollment_date", context(info)["date_of_birth"], errors)
            return day
        return every(check)

    @classmethod
    def _between(cls, raw: Mapping[str, Any], info: ValidationInfo) -> list[FieldError]:
        errors: list[FieldError] = []
        if "idoc_number" in raw or "idoc_number_confirmation" in raw:
            idoc_pair(raw, errors)
        return errors


# the body's field -> the fact it changes
_FACTS = {"parent_institution": "institution", "idoc_number": "idoc_number",
          "counties_of_commitment": "counties", "msr_date": "msr_date",
          "msr_county": "msr_county", "offenses": "offenses",
          "enrollment_date": "enrollment_date"}


def check_patch(
    raw: Any, current: Facts, *, today: date, known: Known, date_of_birth: date,
) -> dict[str, Any]:
    """The changed facts (field -> new value), or InvalidInput naming every bad field
    (the body's model, ``ReturningCitizenPatch``)."""
    body = ReturningCitizenPatch.model_validate(raw, context={
        "current": current, "today": today, "known": known, "date_of_birth": date_of_birth})
    changes = {fact: getattr(body, name) for name, fact in _FACTS.items()
               if name in body.model_fields_set}
    if "offenses" in changes and set(changes["offenses"]) == set(current.offenses):
        del changes["offenses"]  # the same offenses in another order
    return {k: v for k, v in changes.items() if getattr(current, k) != v}
