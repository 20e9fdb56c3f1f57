"""groups's data access: SQL on the caller's connection, nothing else."""

from __future__ import annotations
