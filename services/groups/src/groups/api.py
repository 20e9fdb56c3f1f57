"""groups's routes: parse, open a transaction, call a use case, answer a pydantic model."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
