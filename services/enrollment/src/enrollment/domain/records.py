"""What the enrollment service stores, as plain values (the repository returns these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

if TYPE_CHECKING:
    from enrollment.domain.programs import Question


@dataclass(frozen=True)
class Program:
    code: str
    name: str
    description: str
    open_for_applications: bool
    questions_version: int
    questions: tuple[Question, ...]
    updated_at: datetime


@dataclass(frozen=True)
class ReferenceEntry:
    kind: str
    code: str
    name: str
    external_code: str | None
    retired: bool


@dataclass(frozen=True)
class Authorization:
    program: str
    staff_id: UUID
    granted_by: UUID
    granted_at: datetime
    username: str | None
    name: str | None


@dataclass(frozen=True)
class KnownStaff:
    id: UUID
    username: str
    name: str
    roles: tuple[str, ...]
    status: str


@dataclass(frozen=True)
class Enrollment:
    id: UUID
    program: str
    customer_id: UUID
    status: str
    status_on: date
    status_reason: str | None
    added_by: UUID | None
    enrolled_on: date | None
    exited_on: date | None
    exit_reason: str | None
    exit_note: str | None
    created_at: datetime
    updated_at: datetime
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True)
class Application:
    id: UUID
    program: str
    customer_id: UUID
    enrollment_id: UUID
    questions_version: int
    answers: dict[str, Any]
    submitted_at: datetime


@dataclass(frozen=True)
class ReturningCitizen:
    """A Returning Citizens enrollment as listed (no offenses: those are read apart)."""

    enrollment_id: UUID
    customer_id: UUID
    status: str
    idoc_number: str
    first_name: str
    last_name: str
    date_of_birth: date
    institution: str
    counties: tuple[str, ...]
    msr_date: date
    msr_county: str | None
    enrollment_date: date
    added_by: UUID
    created_at: datetime
    updated_at: datetime
    username: str | None = None
    exited_on: date | None = None


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor_id: UUID | None
    action: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class IntakeRequest:
    """An Add Customer submit under an Idempotency-Key."""

    staff_id: UUID
    key: str
    request_hash: bytes
    state: str
    account_id: UUID | None
    account_created: bool | None
    username: str | None
    enrollment_id: UUID | None


@dataclass(frozen=True)
class Actor:
    """Who is calling, from their verified token (kept to call identity on their behalf)."""

    id: UUID
    kind: Literal["staff", "customer"]
    roles: frozenset[str] = frozenset()
    token: str = field(default="", repr=False)
