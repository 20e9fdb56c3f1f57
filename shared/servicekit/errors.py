"""Errors every service's domain raises; each service's api maps them to HTTP answers.

Plain classes (no I/O, no framework), so domain modules import them freely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class DomainError(Exception):
    """A rule of a service's domain was broken."""


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str


class InvalidInput(DomainError):
    """Every broken rule of one request at once (never the offending values)."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        super().__init__("invalid input: " + ", ".join(e.field for e in self.errors))


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does (404)."""

    def __init__(self, what: str = "not found") -> None:
        super().__init__(what)


class Conflict(DomainError):
    """The request clashes with the current state (409); ``field`` names what clashes
    (None: the request as a whole, ``reason`` is then the whole sentence); ``code``
    is the problem type; ``extra`` goes into the answer as it is."""

    def __init__(self, field: str | None, reason: str, *, code: str = "conflict",
                 **extra: Any) -> None:
        self.field, self.reason, self.code = field, reason, code
        self.extra = extra
        super().__init__(reason if field is None else f"{field} {reason}")


class Forbidden(DomainError):
    """The caller is known but may not do this (403)."""

    def __init__(self, reason: str = "not allowed", *, code: str = "forbidden") -> None:
        self.reason, self.code = reason, code
        super().__init__(reason)


class TooManyRequests(DomainError):
    """A rate limit was hit (429); ``retry_after`` seconds until the next try may pass."""

    def __init__(self, reason: str, *, retry_after: int) -> None:
        self.reason, self.retry_after = reason, retry_after
        super().__init__(reason)


class DatabaseBusy(DomainError):
    """No pooled database connection came free in time (503, try again shortly)."""
