"""Use cases of notify. Each takes the caller's connection (one transaction) and the deps:
handlers (inside the consumer's inbox transaction), routes and the delivery worker
share them. Handlers only write rows; the worker sends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import structlog

from notify import repository
from notify.deps import Deps
from notify.domain import (
    Message,
    Recipient,
    backoff,
    invitation_text,
    plan_deliveries,
    recovery_text,
    reset_notice,
    stored_link_context,
)
from notify.mail import SendResult
from shared.schemas.base import Event
from shared.schemas.groups import DirectMessageSent, GroupMessageRequested, InvitationSent
from shared.schemas.identity import (
    CustomerAccountCreated,
    CustomerAccountUpdated,
    PasswordRecoveryRequested,
    PasswordResetByStaff,
)
from shared.schemas.notify import MessageDelivered, MessageFailed
from shared.servicekit import audit
from shared.servicekit.auth import Principal
from shared.servicekit.db import Connection, transaction
from shared.servicekit.errors import FieldError, InvalidInput, NotFound
from shared.servicekit.paging import cursor_key, encode_cursor
from shared.servicekit.seal import SealError, recovery_context

log = structlog.get_logger(__name__)

ADMIN_ROLE = "admin"

# -- the directory -------------------------------------------------------------------


def _full_name(first: str | None, last: str | None) -> str | None:
    return " ".join(p for p in (first, last) if p) or None


async def account_created(conn: Connection, deps: Deps, ev: CustomerAccountCreated) -> None:
    await repository.upsert_customer(
        conn, ev.account_id, _full_name(ev.first_name, ev.last_name), ev.email, "active",
        deps.clock.now())


async def account_updated(conn: Connection, deps: Deps, ev: CustomerAccountUpdated) -> None:
    name = None
    if ev.first_name is not None or ev.last_name is not None:
        current = await repository.recipients(conn, [ev.account_id])
        old = (current[0].name or "").split(" ", 1) if current and current[0].name else []
        first = ev.first_name or (old[0] if old else None)
        last = ev.last_name or (old[1] if len(old) > 1 else None)
        name = _full_name(first, last)
    await repository.update_customer(
        conn, ev.account_id, name=name, email=ev.email, email_removed=ev.email_removed,
        status=ev.status, now=deps.clock.now())


async def accounts_merged(
    conn: Connection, deps: Deps, survivor_id: uuid.UUID, merged_id: uuid.UUID
) -> None:
    """Messages to the merged account now reach the survivor, and its inbox moves there."""
    await repository.set_merged_into(conn, merged_id, survivor_id, deps.clock.now())
    await repository.move_inbox(conn, merged_id, survivor_id)


async def accounts_unmerged(conn: Connection, deps: Deps, merged_id: uuid.UUID) -> None:
    await repository.set_merged_into(conn, merged_id, None, deps.clock.now())
    await repository.give_inbox_back(conn, merged_id)


# -- accepting a message: rows only ----------------------------------------------------


async def accept_message(
    conn: Connection, deps: Deps, m: Message, recipients: list[Recipient]
) -> int:
    """The message and one delivery per recipient and channel; inbox items are written
    (and delivered) at once, emails wait for the worker. Returns new deliveries."""
    now = deps.clock.now()
    await repository.insert_message(conn, m)
    addresses = [r.address for r in recipients if r.address]
    suppressed = await repository.suppressed_among(conn, addresses) if addresses else set()
    new = await repository.insert_deliveries(
        conn, m.id, plan_deliveries(m.kind, recipients, suppressed), now)
    inbox = [d.customer_id for d in new if d.channel == "inbox" and d.customer_id]
    await repository.insert_inbox_items(conn, m, inbox, now)
    events: list[Event] = [
        MessageDelivered(message_id=m.id, customer_id=c, channel="inbox") for c in inbox]
    events += [
        MessageFailed(message_id=m.id, customer_id=d.customer_id, channel="email",
                      reason="the address is suppressed after a permanent refusal",
                      permanent=True)
        for d in new if d.status == "suppressed"]
    if events:
        await deps.outbox.add_many(conn, events)
    return len(new)


async def group_message(conn: Connection, deps: Deps, ev: GroupMessageRequested) -> int:
    m = Message(ev.message_id, "group", ev.staff_id, ev.group_id, ev.subject, ev.body,
                deps.clock.now())
    return await accept_message(conn, deps, m, await repository.recipients(conn, ev.recipient_ids))


async def direct_message(conn: Connection, deps: Deps, ev: DirectMessageSent) -> int:
    m = Message(ev.message_id, "direct", ev.staff_id, None, ev.subject, ev.body,
                deps.clock.now())
    return await accept_message(conn, deps, m, await repository.recipients(conn, [ev.customer_id]))


async def invitation(conn: Connection, deps: Deps, ev: InvitationSent) -> int:
    """To the account (inbox, and email if it has one), or to a bare address: an address
    with no account gets an email only."""
    recipient: Recipient | None = None
    if ev.customer_id is not None:
        known = (await repository.recipients(conn, [ev.customer_id]))[0]
        recipient = Recipient(known.customer_id, ev.email or known.address, known.name)
    elif ev.email is not None:
        recipient = await repository.customer_by_email(conn, ev.email) or Recipient(
            None, ev.email)
    assert recipient is not None  # the event requires one of the two
    expires = ev.expires_at.astimezone(deps.clock.zone).strftime("%B %d, %Y")
    subject, body = invitation_text(str(ev.join_url), expires)
    m = Message(ev.invitation_id, "invitation", ev.staff_id, ev.group_id, subject, body,
                deps.clock.now(), link=str(ev.join_url), expires_at=ev.expires_at)
    return await accept_message(conn, deps, m, [recipient])


async def password_recovery(
    conn: Connection, deps: Deps, ev: PasswordRecoveryRequested, event_id: uuid.UUID
) -> int:
    """The recovery link, by email only, to the address identity gave.

    The link comes sealed for notify (``sealed_link``). It is opened here only to be
    sealed again for this message's row (and opened once more when the email is
    rendered): no table, log or event of notify holds it in the clear. A link that does
    not open (keys out of step) fails the handler: retried, then dead-lettered, still
    sealed, for ``csc dlq replay`` once the keys are right. An event without a sealed
    link (an identity from before the seal) is not delivered."""
    if not ev.sealed_link:
        log.warning("recovery_without_sealed_link", account_id=str(ev.account_id))
        return 0
    seal = deps.renderer.seal
    link = seal.open(ev.sealed_link, recovery_context(ev.account_id))
    if not link.startswith(("https://", "http://")):
        raise SealError("the sealed recovery link is not a web address")
    known = (await repository.recipients(conn, [ev.account_id]))[0]
    expires = ev.expires_at.strftime("%H:%M UTC on %B %d, %Y")
    subject, body = recovery_text(expires)
    m = Message(event_id, "password_recovery", None, None, subject, body, deps.clock.now(),
                link=seal.seal(link, stored_link_context(event_id)), expires_at=ev.expires_at)
    return await accept_message(
        conn, deps, m, [Recipient(known.customer_id, str(ev.email), known.name)])


async def password_reset(
    conn: Connection, deps: Deps, ev: PasswordResetByStaff, event_id: uuid.UUID
) -> int:
    """An inbox notice that staff reset the password (never the password)."""
    subject, body = reset_notice()
    m = Message(event_id, "password_reset", ev.staff_id, None, subject, body,
                deps.clock.now())
    return await accept_message(conn, deps, m, await repository.recipients(conn, [ev.account_id]))


# -- the delivery worker's steps ---------------------------------------------------------


@dataclass(frozen=True)
class Job:
    claimed: repository.Claimed
    message: Message


async def claim(conn: Connection, deps: Deps, owner: str, limit: int) -> list[Job]:
    """Lease due emails to ``owner``; those to a suppressed address are settled here."""
    now = deps.clock.now()
    lease_until = now + _seconds(deps.settings.worker_lease_seconds)
    claimed = await repository.claim_due(conn, now, owner, lease_until, limit)
    if not claimed:
        return []
    suppressed = await repository.suppressed_among(conn, [c.address for c in claimed])
    if suppressed:
        skipped = [c for c in claimed if c.address.lower() in suppressed]
        await _record(conn, deps, owner, [
            (c, repository.Result(c.id, "suppressed", "not sent: the address is suppressed"))
            for c in skipped])
        claimed = [c for c in claimed if c.address.lower() not in suppressed]
    msgs = await repository.messages(conn, list({c.message_id for c in claimed}))
    return [Job(c, msgs[c.message_id]) for c in claimed]


async def record_outcomes(
    conn: Connection, deps: Deps, owner: str, outcomes: list[tuple[Job, SendResult]]
) -> None:
    """What the server answered: sent; failed (5xx, or too many tries: the address is
    suppressed on a 5xx); deferred with backoff and jitter (4xx, connection lost)."""
    s = deps.settings
    now = deps.clock.now()
    rows: list[tuple[repository.Claimed, repository.Result]] = []
    to_suppress: dict[int, tuple[str, str]] = {}
    for job, result in outcomes:
        c = job.claimed
        if result.outcome == "sent":
            rows.append((c, repository.Result(c.id, "sent", result.reply)))
        elif result.outcome == "permanent" or c.attempts >= s.max_attempts:
            rows.append((c, repository.Result(c.id, "failed", result.reply)))
            if result.outcome == "permanent" and result.suppress:
                to_suppress[c.id] = (c.address, result.reply)
        else:
            delay = backoff(c.attempts, s.retry_base_seconds, s.retry_max_seconds)
            rows.append((c, repository.Result(c.id, "deferred", result.reply, now + delay)))
    recorded = await _record(conn, deps, owner, rows)
    await repository.suppress(
        conn, [to_suppress[r.id] for r in recorded if r.id in to_suppress], now)


async def _record(
    conn: Connection, deps: Deps, owner: str,
    rows: list[tuple[repository.Claimed, repository.Result]],
) -> list[repository.Recorded]:
    recorded = await repository.record_results(
        conn, [r for _, r in rows], owner, deps.clock.now())
    events: list[Event] = []
    for r in recorded:
        if r.status == "sent":
            events.append(MessageDelivered(
                message_id=r.message_id, customer_id=r.customer_id, channel="email",
                attempts=max(1, r.attempts)))
        else:
            events.append(MessageFailed(
                message_id=r.message_id, customer_id=r.customer_id, channel="email",
                reason=r.reply or r.status, permanent=r.status != "deferred",
                attempts=max(1, r.attempts)))
    if events:
        await deps.outbox.add_many(conn, events)
    return recorded


def _seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


# -- staff: message status ------------------------------------------------------------


async def visible_message(
    pool: asyncpg.Pool, deps: Deps, principal: Principal, token: str, message_id: uuid.UUID
) -> Message:
    """The message, if the caller may see its status: its sender or an admin (known
    here), or staff who reach its group (groups is asked with the caller's own token).
    NotFound for anyone else, AccessUnavailable (503) when groups cannot be asked: never
    a silent allow. Opens its own short read; the question to groups is asked after
    it, outside any transaction."""
    if not principal.is_staff:
        raise NotFound("no such message")
    async with transaction(pool) as conn:
        m = await repository.get_message(conn, message_id)
    if m is None:
        raise NotFound("no such message")
    if m.sender_id == principal.id or ADMIN_ROLE in principal.roles:
        return m
    if m.group_id is not None and await deps.groups.reaches_group(token, m.group_id):
        return m
    raise NotFound("no such message")


@dataclass(frozen=True)
class MessageStatus:
    message: Message
    counts: dict[str, int]
    total: int


async def message_status(conn: Connection, m: Message) -> MessageStatus:
    """Deliveries per status of a message the caller may see (``visible_message``)."""
    raw = await repository.status_counts(conn, m.id)
    counts = {
        "queued": raw.get("queued", 0) + raw.get("sending", 0),
        "sent": raw.get("sent", 0), "deferred": raw.get("deferred", 0),
        "failed": raw.get("failed", 0), "suppressed": raw.get("suppressed", 0),
    }
    return MessageStatus(m, counts, sum(raw.values()))


async def deliveries(
    conn: Connection, m: Message, statuses: list[str] | None, cursor: str | None, limit: int,
) -> tuple[list[repository.DeliveryRow], str | None]:
    after = 0
    if cursor:
        (key,) = cursor_key(cursor, 1)
        if not isinstance(key, int):
            raise InvalidInput([FieldError("cursor", "is not a cursor from this list")])
        after = key
    rows = await repository.list_deliveries(conn, m.id, statuses, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more else None


async def resend_failed(conn: Connection, deps: Deps, principal: Principal, m: Message) -> int:
    """Failed emails of a message the caller may see go back in the queue; staff asking
    for it lifts the suppression of those addresses. Returns how many were queued again."""
    message_id = m.id
    addresses = await repository.requeue_failed(conn, message_id, deps.clock.now())
    if addresses:
        await repository.lift_suppressions(conn, addresses)
    await audit.record(conn, principal.actor, "notify.resend_failed", message_id,
                       {"requeued": len(addresses)})
    return len(addresses)


# -- customers: the inbox -----------------------------------------------------------------


@dataclass(frozen=True)
class InboxPage:
    items: list[repository.InboxItem]
    unread: int
    next_cursor: str | None


async def inbox(
    conn: Connection, customer_id: uuid.UUID, cursor: str | None, limit: int
) -> InboxPage:
    before = None
    if cursor:
        at, item = cursor_key(cursor, 2)
        try:
            before = (datetime.fromisoformat(str(at)), uuid.UUID(str(item)))
        except ValueError:
            raise InvalidInput([FieldError("cursor", "is not a cursor from this list")]) from None
        if before[0].tzinfo is None:
            raise InvalidInput([FieldError("cursor", "is not a cursor from this list")])
    items = await repository.list_inbox(conn, customer_id, before, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    nxt = encode_cursor(items[-1].received_at.isoformat(), str(items[-1].id)) if more else None
    return InboxPage(items, await repository.unread_count(conn, customer_id), nxt)


async def read_item(
    conn: Connection, deps: Deps, customer_id: uuid.UUID, item_id: uuid.UUID
) -> repository.InboxItem:
    item = await repository.mark_read(conn, item_id, customer_id, deps.clock.now())
    if item is None:
        raise NotFound("no such inbox item")
    return item
