"""Route dependencies shared by identity's routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from identity.deps import Deps
from shared.servicekit.auth import Principal, require_staff
from shared.servicekit.runtime import get_deps

Ids = Annotated[Deps, Depends(get_deps)]
Staff = Annotated[Principal, require_staff()]
