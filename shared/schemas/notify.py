"""Events produced by the notify service (delivery outcomes)."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field, PositiveInt

from shared.schemas.base import Event

PRODUCER = "notify"
DELIVERIES_TOPIC = "notify.deliveries.v1"

Channel = Literal["email", "inbox"]


class MessageDelivered(Event):
    """A message reached one recipient (SMTP accepted it, or it landed in the inbox)."""

    TYPE: ClassVar[str] = "MessageDelivered"
    TOPIC: ClassVar[str] = DELIVERIES_TOPIC
    KEY_FIELD: ClassVar[str] = "message_id"

    message_id: UUID = Field(
        description="The group or direct message id, or the id of the invitation."
    )
    customer_id: UUID | None = Field(
        default=None, description="None for an email-only invitee."
    )
    channel: Channel
    attempts: PositiveInt = 1


class MessageFailed(Event):
    """A message could not be delivered to one recipient."""

    TYPE: ClassVar[str] = "MessageFailed"
    TOPIC: ClassVar[str] = DELIVERIES_TOPIC
    KEY_FIELD: ClassVar[str] = "message_id"

    message_id: UUID = Field(
        description="The group or direct message id, or the id of the invitation."
    )
    customer_id: UUID | None = Field(
        default=None, description="None for an email-only invitee."
    )
    channel: Channel
    reason: str = Field(
        min_length=1, max_length=2000, description="A short cause; no personal data."
    )
    permanent: bool = Field(default=True, description="False if it will be retried.")
    attempts: PositiveInt = 1
