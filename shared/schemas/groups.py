"""Events produced by the groups service (groups, membership, invitations, messages)."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, EmailStr, Field, HttpUrl, model_validator

from shared.schemas.base import Code, Event, Name, Text

PRODUCER = "groups"
GROUPS_TOPIC = "groups.groups.v1"
MESSAGES_TOPIC = "groups.messages.v1"

GroupKind = Literal["personal", "lwia", "program"]
MembershipVia = Literal["passcode", "invitation", "staff", "iwds", "program"]


class GroupCreated(Event):
    """A group (or subgroup) was created."""

    TYPE: ClassVar[str] = "GroupCreated"
    TOPIC: ClassVar[str] = GROUPS_TOPIC
    KEY_FIELD: ClassVar[str] = "group_id"

    group_id: UUID
    kind: GroupKind
    name: Name
    parent_group_id: UUID | None = Field(
        default=None, description="Set for a subgroup."
    )
    owner_staff_id: UUID | None = Field(
        default=None, description="Owner of a personal group."
    )
    lwia_code: Code | None = Field(default=None, description="Set for an LWIA group.")
    program: Code | None = Field(
        default=None, description="Set for a special program group."
    )


class MemberAdded(Event):
    """A customer joined a group."""

    TYPE: ClassVar[str] = "MemberAdded"
    TOPIC: ClassVar[str] = GROUPS_TOPIC
    KEY_FIELD: ClassVar[str] = "group_id"

    group_id: UUID
    kind: GroupKind
    customer_id: UUID
    via: MembershipVia
    by: UUID | None = Field(
        default=None, description="Staff id when staff added the customer."
    )


class MemberRemoved(Event):
    """A customer left or was removed from a group."""

    TYPE: ClassVar[str] = "MemberRemoved"
    TOPIC: ClassVar[str] = GROUPS_TOPIC
    KEY_FIELD: ClassVar[str] = "group_id"

    group_id: UUID
    kind: GroupKind
    customer_id: UUID
    via: MembershipVia
    by: UUID | None = Field(
        default=None, description="Staff id when staff removed the customer."
    )


class InvitationSent(Event):
    """An individual invitation to join a group was issued (to an account or an email)."""

    TYPE: ClassVar[str] = "InvitationSent"
    TOPIC: ClassVar[str] = GROUPS_TOPIC
    KEY_FIELD: ClassVar[str] = "group_id"

    invitation_id: UUID
    group_id: UUID
    staff_id: UUID
    customer_id: UUID | None = None
    email: EmailStr | None = None
    join_url: HttpUrl
    expires_at: AwareDatetime

    @model_validator(mode="after")
    def _has_recipient(self) -> InvitationSent:
        if self.customer_id is None and self.email is None:
            raise ValueError("an invitation needs a customer_id or an email")
        return self


class InvitationAccepted(Event):
    """The invitee accepted and joined the group."""

    TYPE: ClassVar[str] = "InvitationAccepted"
    TOPIC: ClassVar[str] = GROUPS_TOPIC
    KEY_FIELD: ClassVar[str] = "group_id"

    invitation_id: UUID
    group_id: UUID
    customer_id: UUID


class InvitationDeclined(Event):
    """The invitee declined the invitation."""

    TYPE: ClassVar[str] = "InvitationDeclined"
    TOPIC: ClassVar[str] = GROUPS_TOPIC
    KEY_FIELD: ClassVar[str] = "group_id"

    invitation_id: UUID
    group_id: UUID
    customer_id: UUID | None = None
    email: EmailStr | None = None


class GroupMessageRequested(Event):
    """Staff sent a message to a group; recipients come in chunks (index of count)."""

    TYPE: ClassVar[str] = "GroupMessageRequested"
    TOPIC: ClassVar[str] = MESSAGES_TOPIC
    KEY_FIELD: ClassVar[str] = "message_id"

    message_id: UUID
    group_id: UUID
    staff_id: UUID
    subject: Name
    body: Text
    recipient_ids: list[UUID] = Field(
        min_length=1, description="Customer ids in this chunk."
    )
    chunk_index: int = Field(ge=0, description="0-based index of this chunk.")
    chunk_count: int = Field(ge=1)

    @model_validator(mode="after")
    def _chunk_in_range(self) -> GroupMessageRequested:
        if self.chunk_index >= self.chunk_count:
            raise ValueError("chunk_index must be less than chunk_count")
        return self


class DirectMessageSent(Event):
    """Staff sent a message to one customer."""

    TYPE: ClassVar[str] = "DirectMessageSent"
    TOPIC: ClassVar[str] = MESSAGES_TOPIC
    KEY_FIELD: ClassVar[str] = "message_id"

    message_id: UUID
    staff_id: UUID
    customer_id: UUID
    subject: Name
    body: Text
