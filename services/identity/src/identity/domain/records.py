"""What the identity service stores about an account, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal
from uuid import UUID

if TYPE_CHECKING:
    from identity.domain.blocking import SsnRelation

AccountKind = Literal["customer", "staff"]

# why a match query was refused (the matcher's and the search rule's reason)
QUERY_REASON = (
    "give an SSN, an identifier (IDOC number or email),"
    " or two of first name, last name and date of birth"
)


# --- what the matcher compares (identity.domain.matching scores them) ---------


@dataclass(frozen=True, slots=True)
class Person:
    """The fields the matcher compares; all optional. The SSN digits stay out of repr."""

    first_name: str | None = None
    last_name: str | None = None
    date_of_birth: date | None = None
    ssn_digits: str | None = field(default=None, repr=False)
    ssn_last4: str | None = None
    idoc_number: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """An account from the blocks. ``ssn_relation`` is set by the repository from the
    keyed lookups (None: not comparable, or left to ``score`` to derive from digits
    or last four)."""

    account_id: UUID
    person: Person
    ssn_relation: SsnRelation | None = None
    username: str = ""


@dataclass(frozen=True)
class Credentials:
    """What sign-in needs of any account."""

    id: UUID
    kind: AccountKind
    username: str
    first_name: str
    last_name: str
    status: str
    password_hash: str | None
    password_is_temporary: bool
    password_expires_at: datetime | None
    failed_signins: int
    locked_until: datetime | None
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Customer:
    id: UUID
    username: str
    first_name: str
    last_name: str
    date_of_birth: date | None
    email: str | None
    ssn_last4: str | None
    status: str
    password_change_required: bool
    source: str
    created_at: datetime
    identifiers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Staff:
    id: UUID
    username: str
    first_name: str
    last_name: str
    email: str | None
    roles: tuple[str, ...]
    status: str
    created_at: datetime


@dataclass(frozen=True)
class Session:
    id: UUID
    account_id: UUID
    kind: AccountKind
    scope: str | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class StoredKey:
    kid: str
    sealed: bytes
    status: str
    created_at: datetime
