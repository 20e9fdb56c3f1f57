"""Corrections to a Returning Citizens enrollment (PATCH), as plain code: the facts that
may change, each rule as on the form, and retired codes kept where the record has them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from enrollment.domain.programs import FieldError, InvalidInput, parse_date
from enrollment.domain.returning_citizens import (
    MAX_COUNTIES,
    MAX_OFFENSES,
    PATCH_FIELDS,
    Known,
    blank,
    idoc_pair,
    not_before_birth,
    offered_code,
    offered_codes,
)
from shared.servicekit.logs import redact


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


def check_patch(
    raw: Mapping[str, Any], current: Facts, *, today: date, known: Known, date_of_birth: date,
) -> dict[str, Any]:
    """The changed facts (field -> new value), or InvalidInput naming every bad field.

    A field left out does not change; ``msr_county: null`` clears it and
    ``offenses: []`` removes them all. Retired codes the record already has stay valid.
    """
    errors: list[FieldError] = []
    for name in raw:
        if name in ("first_name", "last_name", "date_of_birth", "ssn", "ssn_confirmation"):
            errors.append(FieldError(name, "is changed on the customer's account, not here"))
        elif name not in PATCH_FIELDS:
            errors.append(FieldError(redact(str(name))[:64], "is not a field of this form"))
    changes: dict[str, Any] = {}
    if "parent_institution" in raw:
        value = offered_code(raw["parent_institution"], "parent_institution", "institutions",
                             known, errors, keep=(current.institution,))
        if value is not None:
            changes["institution"] = value
    if "idoc_number" in raw or "idoc_number_confirmation" in raw:
        idoc = idoc_pair(raw, errors)
        if idoc is not None:
            changes["idoc_number"] = idoc
    if "counties_of_commitment" in raw:
        counties = offered_codes(raw["counties_of_commitment"], "counties_of_commitment",
                                 "counties", known, errors, required=True,
                                 max_items=MAX_COUNTIES, keep=current.counties)
        if counties is not None:
            changes["counties"] = counties
    if "msr_date" in raw:
        msr = parse_date(raw["msr_date"], "msr_date", errors, required=True)
        not_before_birth(msr, "msr_date", date_of_birth, errors)
        if msr is not None:
            changes["msr_date"] = msr
    if "msr_county" in raw:
        if blank(raw["msr_county"]):
            changes["msr_county"] = None
        else:
            county = offered_code(raw["msr_county"], "msr_county", "counties", known, errors,
                                  keep=(current.msr_county,) if current.msr_county else ())
            if county is not None:
                changes["msr_county"] = county
    if "offenses" in raw:
        offenses = offered_codes(raw["offenses"], "offenses", "offenses", known, errors,
                                 required=False, max_items=MAX_OFFENSES, keep=current.offenses)
        if offenses is not None:
            changes["offenses"] = offenses
    if "enrollment_date" in raw:
        enrolled = parse_date(raw["enrollment_date"], "enrollment_date", errors, required=True)
        if enrolled is not None and enrolled > today:
            errors.append(FieldError("enrollment_date", "must not be in the future"))
        not_before_birth(enrolled, "enrollment_date", date_of_birth, errors)
        if enrolled is not None:
            changes["enrollment_date"] = enrolled
    if errors:
        raise InvalidInput(errors)
    if "offenses" in changes and set(changes["offenses"]) == set(current.offenses):
        del changes["offenses"]  # the same offenses in another order
    return {k: v for k, v in changes.items() if getattr(current, k) != v}
