"""What sync-iwds's use cases get: for now the kit's clock and outbox, built by the kit;
a `@dataclass(frozen=True) class Deps` with its own clients replaces this when needed."""

from __future__ import annotations

from shared.servicekit.runtime import KitDeps as Deps

__all__ = ["Deps"]
