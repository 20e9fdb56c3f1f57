"""Individual invitations: to an account (seen in the portal) or an email address
(belongs to the account that has, or later gets, that address)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from groups import domain
from groups.deps import Deps
from groups.repository import directory
from groups.repository import groups as groups_repo
from groups.repository import invitations as repo
from groups.service import membership
from groups.service.common import Caller, Page, cursor_key, owned_group, parse_uuid
from shared.schemas.groups import InvitationAccepted, InvitationDeclined, InvitationSent
from shared.servicekit import audit
from shared.servicekit.db import Connection
from shared.servicekit.errors import Conflict, FieldError, InvalidInput, NotFound
from shared.servicekit.paging import encode_cursor


@dataclass(frozen=True)
class Invitation:
    id: UUID
    group_id: UUID
    customer_id: UUID | None
    email: str | None
    status: str
    created_at: datetime | None = None
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    responded_at: datetime | None = None
    group_name: str | None = None


def _join_url(deps: Deps, group: asyncpg.Record, invitation_id: UUID) -> str:
    return f"{deps.settings.join_url.rstrip('/')}/{group['join_code']}?invitation={invitation_id}"


async def _send(conn: Connection, deps: Deps, group: asyncpg.Record, row: asyncpg.Record,
                staff_id: UUID) -> None:
    await deps.outbox.add(conn, InvitationSent(
        invitation_id=row["id"], group_id=group["id"], staff_id=staff_id,
        customer_id=row["customer_id"], email=row["email"],
        join_url=_join_url(deps, group, row["id"]), expires_at=row["expires_at"]))


async def invite(conn: Connection, deps: Deps, caller: Caller, group_id: UUID, *,
                 emails: Sequence[str], customer_ids: Sequence[UUID]) -> list[Invitation]:
    """One invitation per new invitee; someone already a member or already invited is
    answered with that status instead (nothing duplicated)."""
    group = await owned_group(conn, caller, group_id, lock=True)
    if group["join_code"] is None:
        raise Conflict("group", "only personal groups take invitations",
                       code="not-joinable")
    if not emails and not customer_ids:
        raise InvalidInput([FieldError("emails", "name at least one email or customer_id")])
    known = await directory.known_customers(conn, list(customer_ids))
    errors = [FieldError(f"customer_ids[{i}]", "is not a known customer")
              for i, c in enumerate(customer_ids) if c not in known]
    if errors:
        raise InvalidInput(errors)
    now = deps.clock.now()
    expires = now + timedelta(days=deps.settings.invitation_days)
    await repo.expire_due(conn, group_id, now)
    out: list[Invitation] = []
    targets: list[tuple[UUID | None, str | None]] = [
        *((c, None) for c in dict.fromkeys(customer_ids)),
        *((None, e) for e in dict.fromkeys(domain.normalize_email(e) for e in emails))]
    for customer_id, email in targets:
        member = customer_id
        if email is not None:
            holder = await directory.customer_by_email(conn, email)
            member = holder["id"] if holder else None
        if member is not None and await groups_repo.is_member(conn, group_id, member):
            out.append(Invitation(uuid.UUID(int=0), group_id, customer_id, email,
                                  "already_member"))
            continue
        pending = await repo.pending_for(conn, group_id, customer_id=customer_id, email=email)
        if pending is not None:
            out.append(Invitation(pending["id"], group_id, customer_id, email,
                                  "already_invited"))
            continue
        row = await repo.insert(conn, id=uuid.uuid4(), group_id=group_id,
                                customer_id=customer_id, email=email, invited_by=caller.id,
                                now=now, expires_at=expires)
        await _send(conn, deps, group, row, caller.id)
        out.append(Invitation(row["id"], group_id, customer_id, email, "pending"))
    await audit.record(conn, caller.actor, "group.invited", group_id,
                       {"invitations": [str(i.id) for i in out if i.status == "pending"]})
    return out


def _view(r: asyncpg.Record, now: datetime) -> Invitation:
    return Invitation(r["id"], r["group_id"], r["customer_id"], r["email"],
                      domain.invitation_status(r["status"], r["expires_at"], now),
                      r["created_at"], r["sent_at"], r["expires_at"],
                      r.get("responded_at"))


async def board(conn: Connection, deps: Deps, caller: Caller, group_id: UUID, *,
                status: str | None, cursor: str | None, limit: int) -> Page:
    await owned_group(conn, caller, group_id)
    key = cursor_key(cursor, 2)
    after = (datetime.fromisoformat(str(key[0])), parse_uuid(key[1], "cursor")) if key else None
    now = deps.clock.now()
    rows = await repo.board(conn, group_id, status=status, now=now, after=after,
                            limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1]["created_at"].isoformat(), str(rows[-1]["id"])) if more else None
    return Page([_view(r, now) for r in rows], nxt)


async def _owned_invitation(conn: Connection, caller: Caller, invitation_id: UUID
                            ) -> tuple[asyncpg.Record, asyncpg.Record]:
    row = await repo.get(conn, invitation_id, lock=True)
    if row is None:
        raise NotFound("invitation not found")
    group = await owned_group(conn, caller, row["group_id"])
    return row, group


async def resend(conn: Connection, deps: Deps, caller: Caller, invitation_id: UUID
                 ) -> Invitation:
    """Send again with a fresh expiry (a pending or expired invitation)."""
    row, group = await _owned_invitation(conn, caller, invitation_id)
    now = deps.clock.now()
    status = domain.invitation_status(row["status"], row["expires_at"], now)
    if status not in ("pending", "expired"):
        raise Conflict("invitation", f"is {status}: only a pending or expired invitation"
                       " is resent", code="invitation-closed")
    if status == "expired":
        await repo.expire_due(conn, group["id"], now)
        if await repo.pending_for(conn, group["id"], customer_id=row["customer_id"],
                                  email=row["email"]) is not None:
            raise Conflict("invitation", "a newer invitation is pending",
                           code="invitation-superseded")
    row = await repo.resend(conn, invitation_id, now,
                            now + timedelta(days=deps.settings.invitation_days))
    await _send(conn, deps, group, row, caller.id)
    await audit.record(conn, caller.actor, "invitation.resent", group["id"],
                       {"invitation_id": invitation_id})
    return _view(row, now)


async def revoke(conn: Connection, deps: Deps, caller: Caller, invitation_id: UUID
                 ) -> Invitation:
    row, group = await _owned_invitation(conn, caller, invitation_id)
    now = deps.clock.now()
    if row["status"] != "pending":
        raise Conflict("invitation", f"is {row['status']}: only a pending invitation is"
                       " revoked", code="invitation-closed")
    await repo.set_status(conn, invitation_id, "revoked", now)
    await audit.record(conn, caller.actor, "invitation.revoked", group["id"],
                       {"invitation_id": invitation_id})
    return _view(await _get(conn, invitation_id), now)


async def _get(conn: Connection, invitation_id: UUID) -> asyncpg.Record:
    row = await repo.get(conn, invitation_id)
    assert row is not None
    return row


async def mine(conn: Connection, deps: Deps, caller: Caller) -> list[Invitation]:
    me = await directory.customer(conn, caller.id)
    rows = await repo.pending_addressed_to(conn, caller.id, me["email"] if me else None,
                                           deps.clock.now())
    return [Invitation(r["id"], r["group_id"], r["customer_id"], r["email"], r["status"],
                       r["created_at"], r["sent_at"], r["expires_at"], None, r["group_name"])
            for r in rows]


async def _addressed_to_me(conn: Connection, deps: Deps, caller: Caller,
                           invitation_id: UUID) -> asyncpg.Record:
    row = await repo.get(conn, invitation_id, lock=True)
    me = await directory.customer(conn, caller.id)
    mine = row is not None and (row["customer_id"] == caller.id or (
        row["email"] is not None and me is not None and me["email"] == row["email"]))
    if row is None or not mine:
        raise NotFound("invitation not found")
    status = domain.invitation_status(row["status"], row["expires_at"], deps.clock.now())
    if status != "pending":
        raise Conflict("invitation", f"is {status}", code=f"invitation-{status}")
    return row


async def accept(conn: Connection, deps: Deps, caller: Caller, invitation_id: UUID
                 ) -> UUID:
    row = await _addressed_to_me(conn, deps, caller, invitation_id)
    group = await groups_repo.group(conn, row["group_id"])
    assert group is not None
    await repo.set_status(conn, invitation_id, "accepted", deps.clock.now(), caller.id)
    await membership.add(conn, deps, group, [caller.id], "invitation", by=None)
    await deps.outbox.add(conn, InvitationAccepted(
        invitation_id=invitation_id, group_id=group["id"], customer_id=caller.id))
    await audit.record(conn, caller.actor, "group.joined", group["id"],
                       {"via": "invitation", "invitation_id": invitation_id})
    return UUID(str(group["id"]))


async def decline(conn: Connection, deps: Deps, caller: Caller, invitation_id: UUID
                  ) -> Invitation:
    row = await _addressed_to_me(conn, deps, caller, invitation_id)
    now = deps.clock.now()
    await repo.set_status(conn, invitation_id, "declined", now)
    await deps.outbox.add(conn, InvitationDeclined(
        invitation_id=invitation_id, group_id=row["group_id"], customer_id=caller.id))
    await audit.record(conn, caller.actor, "invitation.declined", row["group_id"],
                       {"invitation_id": invitation_id})
    return _view(await _get(conn, invitation_id), now)
