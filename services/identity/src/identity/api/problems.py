"""Identity's domain errors as HTTP answers (the only place that knows both)."""

from __future__ import annotations

from identity.api.common import candidate_view
from identity.domain.accounts import (
    DomainError,
    IdempotencyMismatch,
    InvalidCredentials,
    PossibleDuplicates,
    SessionRevoked,
)
from identity.domain.ssn import SsnUnavailable
from shared.servicekit.http import PROBLEM_BASE, Problem


def problem_for(exc: DomainError) -> Problem | None:
    """Identity's own domain errors as HTTP answers; None: the kit maps the standard ones."""
    if isinstance(exc, PossibleDuplicates):
        return Problem(
            409, "Possible existing account",
            "This person may already have an account: link it, or reject each candidate "
            "with rejected_account_ids.", type_=PROBLEM_BASE + "possible-duplicates",
            candidates=[candidate_view(m) for m in exc.candidates],
        )
    if isinstance(exc, IdempotencyMismatch):
        return Problem(422, "Idempotency-Key reused",
                       "this Idempotency-Key was used for a different request",
                       type_=PROBLEM_BASE + "idempotency-key-reused")
    if isinstance(exc, InvalidCredentials):
        return Problem(401, "Unauthorized", str(exc), type_=PROBLEM_BASE + "invalid-credentials")
    if isinstance(exc, SessionRevoked):
        return Problem(401, "Unauthorized", "the session has ended",
                       type_=PROBLEM_BASE + "session-ended")
    if isinstance(exc, SsnUnavailable):
        return Problem(400, "Bad request", str(exc))
    return None
