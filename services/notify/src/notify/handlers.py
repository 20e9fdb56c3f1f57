"""Events the notify service consumes: event type -> handler.

The consumer subscribes to exactly these types' topics. Handlers only write rows (in
the consumer's inbox transaction); the delivery worker sends.
"""

from __future__ import annotations

from notify import service
from notify.deps import Deps
from shared.schemas.envelope import Envelope
from shared.schemas.groups import DirectMessageSent, GroupMessageRequested, InvitationSent
from shared.schemas.identity import (
    CustomerAccountCreated,
    CustomerAccountsMerged,
    CustomerAccountsUnmerged,
    CustomerAccountUpdated,
    PasswordRecoveryRequested,
    PasswordResetByStaff,
)
from shared.servicekit.consumer import Subscriptions
from shared.servicekit.db import Connection


async def on_account_created(
    conn: Connection, deps: Deps, event: CustomerAccountCreated, envelope: Envelope
) -> None:
    await service.account_created(conn, deps, event)


async def on_account_updated(
    conn: Connection, deps: Deps, event: CustomerAccountUpdated, envelope: Envelope
) -> None:
    await service.account_updated(conn, deps, event)


async def on_accounts_merged(
    conn: Connection, deps: Deps, event: CustomerAccountsMerged, envelope: Envelope
) -> None:
    await service.accounts_merged(conn, deps, event.survivor_id, event.merged_id)


async def on_accounts_unmerged(
    conn: Connection, deps: Deps, event: CustomerAccountsUnmerged, envelope: Envelope
) -> None:
    await service.accounts_unmerged(conn, deps, event.merged_id)


async def on_group_message(
    conn: Connection, deps: Deps, event: GroupMessageRequested, envelope: Envelope
) -> None:
    await service.group_message(conn, deps, event)


async def on_direct_message(
    conn: Connection, deps: Deps, event: DirectMessageSent, envelope: Envelope
) -> None:
    await service.direct_message(conn, deps, event)


async def on_invitation(
    conn: Connection, deps: Deps, event: InvitationSent, envelope: Envelope
) -> None:
    await service.invitation(conn, deps, event)


async def on_recovery(
    conn: Connection, deps: Deps, event: PasswordRecoveryRequested, envelope: Envelope
) -> None:
    await service.password_recovery(conn, deps, event, envelope.event_id)


async def on_reset(
    conn: Connection, deps: Deps, event: PasswordResetByStaff, envelope: Envelope
) -> None:
    await service.password_reset(conn, deps, event, envelope.event_id)


SUBSCRIPTIONS: Subscriptions = {
    CustomerAccountCreated: on_account_created,
    CustomerAccountUpdated: on_account_updated,
    CustomerAccountsMerged: on_accounts_merged,
    CustomerAccountsUnmerged: on_accounts_unmerged,
    GroupMessageRequested: on_group_message,
    DirectMessageSent: on_direct_message,
    InvitationSent: on_invitation,
    PasswordRecoveryRequested: on_recovery,
    PasswordResetByStaff: on_reset,
}
