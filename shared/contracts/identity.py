"""identity's HTTP API as other services call it (enrollment's Add Customer).

An SSN may be in a request; it is never in an answer (the last four digits only).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MatchQuery(BaseModel):
    """POST /v1/matches: what is known of the person."""

    model_config = ConfigDict(extra="forbid")
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    date_of_birth: date | None = None
    ssn: str | None = Field(default=None, max_length=20)
    idoc_number: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=320)
    account_id: uuid.UUID | None = Field(
        default=None, description="Match for this account: itself and the accounts "
        "remembered as other people are left out.")


class Evidence(BaseModel):
    field: str
    outcome: str
    weight: float | None = None


class Candidate(BaseModel):
    """An existing account that may be the person (the SSN as its last four only)."""

    model_config = ConfigDict(frozen=True)
    account_id: uuid.UUID
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    date_of_birth: date | None = None
    ssn_last4: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    score: float | None = None
    band: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)


class MatchAnswer(BaseModel):
    """At most five candidates, best first."""

    candidates: list[Candidate]


class MatchConfirmation(BaseModel):
    """POST /v1/matches/confirmations: staff chose ``account_id`` as the person."""

    model_config = ConfigDict(extra="forbid")
    account_id: uuid.UUID
    rejected_account_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class Identifier(BaseModel):
    kind: Literal["idoc_number", "iwds_person_id"]
    value: str = Field(min_length=1, max_length=40)


class CustomerCreate(BaseModel):
    """POST /v1/customers (with an optional Idempotency-Key header)."""

    model_config = ConfigDict(extra="forbid")
    first_name: str = Field(max_length=200)
    last_name: str = Field(max_length=200)
    date_of_birth: date
    ssn: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=320)
    identifiers: list[Identifier] = Field(default_factory=list, max_length=10)
    rejected_account_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class CreatedCustomer(BaseModel):
    """201: the new account and its temporary password (shown this once)."""

    id: uuid.UUID
    username: str
    temporary_password: str = Field(repr=False)
    password_expires_at: str


class PossibleDuplicatesProblem(BaseModel):
    """409 possible-duplicates: link one of these, or reject each."""

    type: str
    detail: str | None = None
    candidates: list[Candidate] = Field(default_factory=list)
