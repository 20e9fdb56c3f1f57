"""Errors every service's domain raises; each service's api maps them to HTTP answers.

Plain classes (no I/O, no framework), so domain modules import them freely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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
