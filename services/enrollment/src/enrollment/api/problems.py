"""Enrollment's own domain errors as HTTP answers (the kit maps the standard ones)."""

from __future__ import annotations

from enrollment.api.common import candidate_view
from enrollment.domain.programs import (
    DomainError,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    PossibleDuplicates,
)
from enrollment.repository.identity import (
    IdentityOutcomeUnknown,
    IdentityUnauthorized,
    IdentityUnavailable,
)
from shared.servicekit.http import PROBLEM_BASE, Problem


def problem(exc: DomainError) -> Problem | None:
    """Enrollment's own domain errors as HTTP answers; None: the kit maps the standard ones."""
    if isinstance(exc, IdempotencyKeyReused):
        return Problem(422, "Idempotency-Key reused", exc.reason, type_=PROBLEM_BASE + exc.code)
    if isinstance(exc, PossibleDuplicates):
        return Problem(409, "Conflict", exc.reason, type_=PROBLEM_BASE + exc.code,
                       candidates=[candidate_view(c) for c in exc.candidates])
    if isinstance(exc, IdempotencyKeyRequired):
        return Problem(428, "Idempotency-Key required", exc.reason,
                       type_=PROBLEM_BASE + exc.code)
    if isinstance(exc, IdentityOutcomeUnknown):
        return Problem(503, "Identity did not answer",
                       f"The identity service was asked to act and did not answer "
                       f"({exc.cause}): identity may have {exc.done}. Nothing is enrolled "
                       "yet; retry with the same Idempotency-Key to finish (a retry never "
                       "makes a second account).",
                       type_=PROBLEM_BASE + "identity-outcome-unknown",
                       headers={"Retry-After": "5"})
    if isinstance(exc, IdentityUnavailable):
        return Problem(503, "Identity unavailable",
                       f"The identity service is unavailable ({exc}); nothing was saved. "
                       "Try again in a moment.", type_=PROBLEM_BASE + "identity-unavailable",
                       headers={"Retry-After": "5"})
    if isinstance(exc, IdentityUnauthorized):
        return Problem(401, "Unauthorized", "identity refused the token; sign in again",
                       type_=PROBLEM_BASE + "unauthorized",
                       headers={"WWW-Authenticate": "Bearer"})
    return None
