"""Events produced by the enrollment service (special programs, enrollments).

Offense data never travels in an event; it stays in enrollment.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas.base import Code, Event, Text

PRODUCER = "enrollment"
PROGRAMS_TOPIC = "enrollment.programs.v1"
ENROLLMENTS_TOPIC = "enrollment.enrollments.v1"

IdentifierKind = Literal["idoc_number"]
ClearableFact = Literal["institution", "msr_date", "msr_county"]
ExitReason = Literal[
    "completed", "withdrew", "ineligible", "transferred", "deceased", "other"
]
EnrollmentStatus = Literal["invited", "applied", "enrolled", "exited"]


class Identifier(BaseModel):
    """An identifier of the customer within a program (e.g. an IDOC number)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: IdentifierKind
    value: Code


class ProgramStaffAuthorized(Event):
    """A staff member was authorized to see a special program's customers."""

    TYPE: ClassVar[str] = "ProgramStaffAuthorized"
    TOPIC: ClassVar[str] = PROGRAMS_TOPIC
    KEY_FIELD: ClassVar[str] = "program"

    program: Code
    staff_id: UUID
    by: UUID = Field(description="Staff id of who granted it.")


class ProgramStaffRevoked(Event):
    """A staff member's authorization for a special program was withdrawn."""

    TYPE: ClassVar[str] = "ProgramStaffRevoked"
    TOPIC: ClassVar[str] = PROGRAMS_TOPIC
    KEY_FIELD: ClassVar[str] = "program"

    program: Code
    staff_id: UUID
    by: UUID = Field(description="Staff id of who revoked it.")


class ProgramApplicationSubmitted(Event):
    """A customer submitted an application to a special program."""

    TYPE: ClassVar[str] = "ProgramApplicationSubmitted"
    TOPIC: ClassVar[str] = ENROLLMENTS_TOPIC
    KEY_FIELD: ClassVar[str] = "customer_id"

    application_id: UUID
    program: Code
    customer_id: UUID
    enrollment_id: UUID | None = Field(
        default=None, description="The enrollment the application belongs to."
    )


class CustomerEnrolled(Event):
    """A customer was enrolled in a program (Returning Citizens fields are optional)."""

    TYPE: ClassVar[str] = "CustomerEnrolled"
    TOPIC: ClassVar[str] = ENROLLMENTS_TOPIC
    KEY_FIELD: ClassVar[str] = "customer_id"

    enrollment_id: UUID
    program: Code
    customer_id: UUID
    staff_id: UUID
    enrolled_on: date
    identifiers: list[Identifier] = Field(default_factory=list)
    institution: Code | None = Field(
        default=None, description="Parent institution code."
    )
    counties: list[Code] = Field(
        default_factory=list, description="Counties of commitment."
    )
    msr_date: date | None = Field(
        default=None, description="Mandatory supervised release."
    )
    msr_county: Code | None = None


class EnrollmentUpdated(Event):
    """Some enrollment facts changed; a field left out (null) did not change."""

    TYPE: ClassVar[str] = "EnrollmentUpdated"
    TOPIC: ClassVar[str] = ENROLLMENTS_TOPIC
    KEY_FIELD: ClassVar[str] = "customer_id"

    enrollment_id: UUID
    program: Code
    customer_id: UUID
    staff_id: UUID | None = None
    enrolled_on: date | None = None
    identifiers: list[Identifier] | None = None
    institution: Code | None = None
    counties: list[Code] | None = None
    msr_date: date | None = None
    msr_county: Code | None = None
    cleared: list[ClearableFact] = Field(
        default_factory=list, description="Optional facts that were removed."
    )
    updated_by: UUID | None = Field(default=None, description="Staff id.")
    status: EnrollmentStatus | None = Field(
        default=None, description="The new status, when the status changed (e.g. invited)."
    )
    status_on: date | None = Field(default=None, description="Date of the status change.")


class CustomerExited(Event):
    """A customer left a program."""

    TYPE: ClassVar[str] = "CustomerExited"
    TOPIC: ClassVar[str] = ENROLLMENTS_TOPIC
    KEY_FIELD: ClassVar[str] = "customer_id"

    enrollment_id: UUID
    program: Code
    customer_id: UUID
    exited_on: date
    reason: ExitReason
    note: Text | None = None
    by: UUID | None = Field(default=None, description="Staff id; none if automatic.")
