"""Events the identity service consumes: event type -> handler.

The consumer subscribes to exactly these types' topics. Identity reads its own
account events to keep the duplicates queue, so matching a new account never
slows the request that created it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from identity import matches
from identity import repository as repo
from identity.matching import Thresholds
from identity.settings import IdentitySettings
from identity.ssn import SsnVault
from shared.schemas.enrollment import CustomerEnrolled
from shared.schemas.envelope import Envelope
from shared.schemas.identity import CustomerAccountCreated, CustomerAccountUpdated
from shared.servicekit.consumer import Handler
from shared.servicekit.db import Connection


@lru_cache(maxsize=4)
def _matcher_for(
    keys: str, active: str, hmac_key: str, strong: float, possible: float
) -> matches.Matcher:
    return matches.Matcher(
        SsnVault.from_settings(keys, active, hmac_key), Thresholds(strong, possible)
    )


def matcher() -> matches.Matcher:
    """The matcher of the current settings (handlers run in the consumer and in
    `csc dlq replay`, so they read the settings rather than the app's state)."""
    s = IdentitySettings()
    return _matcher_for(
        s.ssn_keys.get_secret_value(), s.ssn_active_key, s.ssn_hmac_key.get_secret_value(),
        s.match_strong, s.match_possible,
    )


async def on_account_created(conn: Connection, event: Any, envelope: Envelope) -> None:
    assert isinstance(event, CustomerAccountCreated)
    await matches.refresh_duplicates(conn, matcher(), event.account_id, replace=False)


async def on_account_updated(conn: Connection, event: Any, envelope: Envelope) -> None:
    assert isinstance(event, CustomerAccountUpdated)
    await matches.refresh_duplicates(conn, matcher(), event.account_id, replace=True)


async def on_customer_enrolled(conn: Connection, event: Any, envelope: Envelope) -> None:
    """A program's identifiers (an IDOC number) help find the person next time."""
    assert isinstance(event, CustomerEnrolled)
    pairs = [(i.kind, i.value.upper()) for i in event.identifiers]
    if pairs and await repo.get_customer(conn, event.customer_id) is not None:
        await repo.add_identifiers(conn, event.customer_id, pairs)


SUBSCRIPTIONS: dict[str, Handler] = {
    "CustomerAccountCreated": on_account_created,
    "CustomerAccountUpdated": on_account_updated,
    "CustomerEnrolled": on_customer_enrolled,
}
