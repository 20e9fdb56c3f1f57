"""What the identity service stores about an account, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from uuid import UUID

AccountKind = Literal["customer", "staff"]


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
