"""Identity's domain errors as HTTP answers (the only place that knows both)."""

from __future__ import annotations

from identity import service
from identity.domain import InvalidInput
from shared.servicekit.http import PROBLEM_BASE, Problem


def problem_for(exc: Exception) -> Problem:
    """Domain errors as HTTP answers (the only place that knows both)."""
    if isinstance(exc, InvalidInput):
        return Problem(422, "Invalid request", "One or more fields are invalid.",
                       type_=PROBLEM_BASE + "validation",
                       errors=[{"field": e.field, "reason": e.reason} for e in exc.errors])
    if isinstance(exc, service.InvalidCredentials):
        return Problem(401, "Unauthorized", str(exc), type_=PROBLEM_BASE + "invalid-credentials")
    if isinstance(exc, service.Conflict):
        return Problem(409, "Conflict", f"{exc.field} {exc.reason}",
                       type_=PROBLEM_BASE + "conflict", field=exc.field)
    if isinstance(exc, service.NotFound):
        return Problem(404, "Not found", str(exc))
    if isinstance(exc, service.SessionRevoked):
        return Problem(401, "Unauthorized", "the session has ended",
                       type_=PROBLEM_BASE + "session-ended")
    return Problem(400, "Bad request", str(exc))
