"""Events produced by the identity service (accounts, staff, passwords)."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, EmailStr, Field

from shared.schemas.base import Code, Event, Name

PRODUCER = "identity"
ACCOUNTS_TOPIC = "identity.accounts.v1"
STAFF_TOPIC = "identity.staff.v1"
SESSIONS_TOPIC = "identity.sessions.v1"

AccountSource = Literal["staff", "self", "import"]
AccountStatus = Literal["active", "locked", "disabled"]
StaffStatus = Literal["active", "disabled"]
PasswordChangeVia = Literal["self", "first_login", "recovery"]
SessionEndReason = Literal[
    "sign_out", "password_changed", "password_reset", "refresh_reused", "merged", "disabled",
    "locked",
]


class CustomerAccountCreated(Event):
    """A customer account was created (by staff, by the customer, or by an import)."""

    TYPE: ClassVar[str] = "CustomerAccountCreated"
    TOPIC: ClassVar[str] = ACCOUNTS_TOPIC
    KEY_FIELD: ClassVar[str] = "account_id"

    account_id: UUID
    username: Name
    first_name: Name | None = Field(
        default=None, description="Absent only on an imported legacy account."
    )
    last_name: Name | None = Field(
        default=None, description="Absent only on an imported legacy account."
    )
    email: EmailStr | None = None
    source: AccountSource
    created_by: UUID | None = Field(
        default=None,
        description="Staff id when staff created it; none for self sign-up.",
    )
    password_change_required: bool = False


class CustomerAccountUpdated(Event):
    """Some fields of a customer account changed; a field left out (null) did not change."""

    TYPE: ClassVar[str] = "CustomerAccountUpdated"
    TOPIC: ClassVar[str] = ACCOUNTS_TOPIC
    KEY_FIELD: ClassVar[str] = "account_id"

    account_id: UUID
    username: Name | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    email: EmailStr | None = None
    email_removed: bool = Field(
        default=False, description="The email address was removed."
    )
    status: AccountStatus | None = None
    password_change_required: bool | None = None
    updated_by: UUID | None = Field(
        default=None, description="Staff id; none if self-service."
    )


class CustomerAccountsMerged(Event):
    """Two accounts of one person were merged into the survivor."""

    TYPE: ClassVar[str] = "CustomerAccountsMerged"
    TOPIC: ClassVar[str] = ACCOUNTS_TOPIC
    KEY_FIELD: ClassVar[str] = "survivor_id"

    survivor_id: UUID
    merged_id: UUID
    by: UUID = Field(description="Staff id.")


class CustomerAccountsUnmerged(Event):
    """A merge was undone: the merged account exists again on its own."""

    TYPE: ClassVar[str] = "CustomerAccountsUnmerged"
    TOPIC: ClassVar[str] = ACCOUNTS_TOPIC
    KEY_FIELD: ClassVar[str] = "survivor_id"

    survivor_id: UUID
    merged_id: UUID
    by: UUID = Field(description="Staff id.")


class PasswordResetByStaff(Event):
    """Staff set a temporary password; the customer must change it at next login."""

    TYPE: ClassVar[str] = "PasswordResetByStaff"
    TOPIC: ClassVar[str] = ACCOUNTS_TOPIC
    KEY_FIELD: ClassVar[str] = "account_id"

    account_id: UUID
    staff_id: UUID


class PasswordChanged(Event):
    """The customer set a new password."""

    TYPE: ClassVar[str] = "PasswordChanged"
    TOPIC: ClassVar[str] = ACCOUNTS_TOPIC
    KEY_FIELD: ClassVar[str] = "account_id"

    account_id: UUID
    via: PasswordChangeVia = "self"


class PasswordRecoveryRequested(Event):
    """A recovery link was issued (single use, short-lived). The link travels only in
    ``sealed_link``: AES-GCM under a key that only identity and notify hold
    (``shared.servicekit.seal``; context ``recovery_context(account_id)``), so the
    topic, the outbox and dead letters never hold a usable link. ``link_token`` is
    kept only so the schema stays compatible; it is always None now."""

    TYPE: ClassVar[str] = "PasswordRecoveryRequested"
    TOPIC: ClassVar[str] = ACCOUNTS_TOPIC
    KEY_FIELD: ClassVar[str] = "account_id"

    account_id: UUID
    email: EmailStr
    link_token: str | None = Field(
        None, min_length=16, max_length=512,
        description="Retired: always None (the link is in sealed_link).")
    expires_at: AwareDatetime
    sealed_link: str | None = Field(
        None, max_length=4096,
        description="The recovery link sealed for notify: v1.<kid>.<base64url>.")


class StaffAccountCreated(Event):
    """A staff account was created."""

    TYPE: ClassVar[str] = "StaffAccountCreated"
    TOPIC: ClassVar[str] = STAFF_TOPIC
    KEY_FIELD: ClassVar[str] = "staff_id"

    staff_id: UUID
    username: Name
    name: Name
    email: EmailStr | None = None
    roles: list[Code] = Field(default_factory=list)
    status: StaffStatus = "active"


class StaffAccountUpdated(Event):
    """A staff account changed; carries the account's full current state."""

    TYPE: ClassVar[str] = "StaffAccountUpdated"
    TOPIC: ClassVar[str] = STAFF_TOPIC
    KEY_FIELD: ClassVar[str] = "staff_id"

    staff_id: UUID
    username: Name
    name: Name
    email: EmailStr
    roles: list[Code] = Field(default_factory=list)
    status: StaffStatus


class SessionRevoked(Event):
    """A sign-in session ended before its time: every access token naming it (``sid``)
    must be refused by every service from now on, although it has not expired yet."""

    TYPE: ClassVar[str] = "SessionRevoked"
    TOPIC: ClassVar[str] = SESSIONS_TOPIC
    KEY_FIELD: ClassVar[str] = "session_id"

    session_id: UUID
    account_id: UUID
    kind: Literal["staff", "customer"]
    reason: SessionEndReason
    revoked_at: AwareDatetime
    forget_after: AwareDatetime = Field(
        description="No access token of the session lives past this: the revocation may "
        "be forgotten then.")
