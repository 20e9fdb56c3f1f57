"""identity's outbox: its events written in the caller's transaction, sent by the kit's
relay (one instance for every use case and for the dependency holder)."""

from __future__ import annotations

from shared.servicekit.outbox import Outbox

OUTBOX = Outbox(producer="identity")
