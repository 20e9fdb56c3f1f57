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
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from enrollment.domain.programs import (
    FieldError,
    InvalidInput,
    ReferenceKind,
    clean_text,
    parse_date,
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


def _ssn(raw: Mapping[str, Any], errors: list[FieldError]) -> str | None:
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


def _name(raw: Mapping[str, Any], name: str, errors: list[FieldError]) -> str | None:
    return clean_text(raw.get(name), name, errors, NAME_MAX)


def not_before_birth(
    day: date | None, name: str, birth: date | None, errors: list[FieldError]
) -> None:
    if day is not None and birth is not None and day < birth:
        errors.append(FieldError(name, "must not be before the date of birth"))


def check_form(
    raw: Mapping[str, Any], *, today: date, known: Known, allowed: Collection[str] = FORM_FIELDS,
) -> Intake:
    """The whole form checked at once: a clean Intake, or InvalidInput naming every bad field."""
    errors = unknown_fields(raw, allowed)
    institution = None
    if blank(raw.get("parent_institution")):
        errors.append(FieldError("parent_institution", "is required"))
    else:
        institution = offered_code(raw["parent_institution"], "parent_institution",
                                   "institutions", known, errors)
    idoc = idoc_pair(raw, errors)
    first = _name(raw, "first_name", errors)
    last = _name(raw, "last_name", errors)
    ssn = _ssn(raw, errors)
    birth = parse_date(raw.get("date_of_birth"), "date_of_birth", errors, required=True)
    if birth is not None and (reason := date_of_birth_reason(birth, today)) is not None:
        errors.append(FieldError("date_of_birth", reason))
        birth = None
    counties = offered_codes(raw.get("counties_of_commitment"), "counties_of_commitment",
                             "counties", known, errors, required=True, max_items=MAX_COUNTIES)
    msr = parse_date(raw.get("msr_date"), "msr_date", errors, required=True)
    not_before_birth(msr, "msr_date", birth, errors)
    msr_county = None
    if not blank(raw.get("msr_county")):
        msr_county = offered_code(raw["msr_county"], "msr_county", "counties", known, errors)
    offenses = offered_codes(raw.get("offenses"), "offenses", "offenses", known, errors,
                             required=False, max_items=MAX_OFFENSES)
    enrolled = parse_date(raw.get("enrollment_date"), "enrollment_date", errors, required=True)
    if enrolled is not None and enrolled > today:
        errors.append(FieldError("enrollment_date", "must not be in the future"))
    not_before_birth(enrolled, "enrollment_date", birth, errors)
    if errors:
        raise InvalidInput(errors)
    assert institution and idoc and first and last and birth and counties and msr and enrolled
    assert offenses is not None
    return Intake(institution, idoc, first, last, birth, counties, msr, msr_county, offenses,
                  enrolled, ssn)


def _uuid(value: Any, name: str, errors: list[FieldError]) -> uuid.UUID | None:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    errors.append(FieldError(name, "must be an account id (a UUID)"))
    return None


def check_submission(
    raw: Mapping[str, Any], *, today: date, known: Known
) -> tuple[Intake, Decision]:
    """Step 2: the form and the decision, every broken rule of both at once."""
    errors: list[FieldError] = []
    intake = None
    try:
        intake = check_form(raw, today=today, known=known,
                            allowed=(*FORM_FIELDS, *DECISION_FIELDS))
    except InvalidInput as exc:
        errors += exc.errors
    link = None
    if raw.get("link_account_id") is not None:
        link = _uuid(raw["link_account_id"], "link_account_id", errors)
    rejected: list[uuid.UUID] = []
    value = raw.get("rejected_account_ids")
    if value is not None:
        if not isinstance(value, list) or len(value) > MAX_REJECTED:
            errors.append(FieldError(
                "rejected_account_ids", f"must be a list of at most {MAX_REJECTED} account ids"))
        else:
            for i, item in enumerate(value):
                found = _uuid(item, f"rejected_account_ids.{i}", errors)
                if found is not None and found not in rejected:
                    rejected.append(found)
    if link is not None and link in rejected:
        errors.append(FieldError("link_account_id", "is also among rejected_account_ids"))
    if errors:
        raise InvalidInput(errors)
    assert intake is not None
    return intake, Decision(link, tuple(rejected))


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
