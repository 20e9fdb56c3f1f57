"""The rules of notify: who gets a message on which channel, what a reply from the
mail server means, how long to wait before trying again. No I/O."""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Kind = Literal["group", "direct", "invitation", "password_recovery", "password_reset"]
Channel = Literal["email", "inbox"]
Status = Literal["queued", "sending", "sent", "deferred", "failed", "suppressed"]
STATUSES: tuple[Status, ...] = ("queued", "sending", "sent", "deferred", "failed", "suppressed")
Outcome = Literal["sent", "temporary", "permanent"]

# Which channels each kind of message uses (a channel is used only where it can reach
# the recipient: the inbox needs an account, email needs an address).
CHANNELS: dict[Kind, tuple[Channel, ...]] = {
    "group": ("inbox", "email"),
    "direct": ("inbox", "email"),
    "invitation": ("inbox", "email"),
    "password_recovery": ("email",),  # someone who cannot sign in cannot read an inbox
    "password_reset": ("inbox",),  # a notice; never the password itself
}


@dataclass(frozen=True)
class Message:
    id: uuid.UUID
    kind: Kind
    sender_id: uuid.UUID | None
    group_id: uuid.UUID | None
    subject: str
    body: str
    created_at: datetime
    link: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Recipient:
    """A customer of the directory (customer_id set), or a bare address (invitations)."""

    customer_id: uuid.UUID | None
    address: str | None
    name: str | None = None

    @property
    def key(self) -> str:
        """What makes a delivery unique within a message and channel."""
        if self.customer_id is not None:
            return str(self.customer_id)
        assert self.address is not None
        return self.address.lower()


@dataclass(frozen=True)
class PlannedDelivery:
    recipient: str
    customer_id: uuid.UUID | None
    channel: Channel
    address: str | None
    status: Status


def plan_deliveries(
    kind: Kind, recipients: list[Recipient], suppressed: set[str]
) -> list[PlannedDelivery]:
    """One delivery per recipient and usable channel. An inbox delivery is done when
    written; an email to a suppressed address is 'suppressed' from the start."""
    planned: dict[tuple[str, Channel], PlannedDelivery] = {}
    for r in recipients:
        for channel in CHANNELS[kind]:
            if channel == "inbox" and r.customer_id is not None:
                planned[(r.key, channel)] = PlannedDelivery(
                    r.key, r.customer_id, "inbox", None, "sent")
            elif channel == "email" and r.address:
                address = r.address.strip()
                status: Status = "suppressed" if address.lower() in suppressed else "queued"
                planned[(r.key, channel)] = PlannedDelivery(
                    r.key, r.customer_id, "email", address, status)
    return list(planned.values())


# -- SMTP replies ----------------------------------------------------------------

def classify(code: int | None) -> Outcome:
    """2xx sent; 5xx a permanent refusal; 4xx, no answer or a lost connection: try again."""
    if code is not None and 200 <= code < 300:
        return "sent"
    if code is not None and 500 <= code < 600:
        return "permanent"
    return "temporary"


def backoff(
    attempts: int, base: float, cap: float, rng: random.Random | None = None
) -> timedelta:
    """Exponential backoff with "equal jitter": between half and all of base*2^(n-1)."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    r = (rng or random).uniform(0.5, 1.0)
    return timedelta(seconds=delay * r)


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def header_text(text: str, limit: int = 200) -> str:
    """Text safe in a mail header: no CR, LF or other control characters (so no injected
    header), one line, at most ``limit`` characters."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit] or "(no subject)"


def short_reply(text: str, limit: int = 500) -> str:
    """An SMTP reply or error kept for staff: one line, bounded."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


# -- texts of the messages notify writes itself -------------------------------------

def stored_link_context(message_id: uuid.UUID) -> str:
    """What a recovery link notify keeps (sealed again, in its message row) is bound to:
    a row's sealed link opens only as that message's."""
    return f"csc.notify.message-link.v1:{message_id}"


def invitation_text(join_url: str, expires: str) -> tuple[str, str]:
    return (
        "You are invited to join a group",
        "A staff member invited you to join their group. Open this link to accept or"
        f" decline: {join_url}\nThe invitation expires on {expires}.",
    )


def recovery_text(expires: str) -> tuple[str, str]:
    """The stored text of a recovery message: never the link (the email's templates
    put the link in; notify keeps it only sealed)."""
    return (
        "Reset your password",
        "The link in this email chooses a new password. It works once and expires at"
        f" {expires}. If you did not ask for it, ignore this message.",
    )


def reset_notice() -> tuple[str, str]:
    return (
        "Your password was reset",
        "A staff member reset your password. You will choose a new one the next time you"
        " sign in. If you did not ask for this, contact the staff member who helps you.",
    )
