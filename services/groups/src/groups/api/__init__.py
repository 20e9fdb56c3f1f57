"""The groups service's HTTP routes (pinned paths), one module per feature: parse, call
a use case, shape the answer. Domain errors rise to the kit (RFC 9457 problems)."""

from __future__ import annotations

from fastapi import APIRouter

from groups.api.access import router as access_router
from groups.api.groups import router as groups_router
from groups.api.invitations import router as invitations_router
from groups.api.messages import router as messages_router

router = APIRouter()
for part in (groups_router, invitations_router, access_router, messages_router):
    router.include_router(part)
