"""What the session fixtures hand to tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Servers:
    pg_dsn: Callable[[str], str]
    bootstrap: str
