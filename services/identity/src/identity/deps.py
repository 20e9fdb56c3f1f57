"""Route dependencies shared by identity's routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from identity.service import Identity
from shared.servicekit.auth import Principal, require_staff


async def get_identity(request: Request) -> Identity:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, every request
    ids: Identity = request.app.state.identity
    return ids


Ids = Annotated[Identity, Depends(get_identity)]
Staff = Annotated[Principal, require_staff()]
