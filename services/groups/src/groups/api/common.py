"""What every route module shares: the caller from the token, deps, paging parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict

from groups.deps import Deps
from groups.service.common import Caller
from shared.servicekit.auth import Principal, require_customer, require_staff
from shared.servicekit.http import PROBLEM_BASE, Problem
from shared.servicekit.paging import MAX_CURSOR_LENGTH
from shared.servicekit.runtime import get_deps

MAX_IDS = 1000


def _caller(p: Principal) -> Caller:
    try:
        return Caller(p.id, p.kind, p.roles)
    except ValueError:
        raise Problem(401, "Unauthorized", "the token's subject is not an account id",
                      type_=PROBLEM_BASE + "unauthorized") from None


async def staff_caller(p: Annotated[Principal, require_staff()]) -> Caller:
    return _caller(p)


async def admin_caller(p: Annotated[Principal, require_staff("admin")]) -> Caller:
    return _caller(p)


async def customer_caller(p: Annotated[Principal, require_customer()]) -> Caller:
    return _caller(p)


Staff = Annotated[Caller, Depends(staff_caller)]
Admin = Annotated[Caller, Depends(admin_caller)]
Customer = Annotated[Caller, Depends(customer_caller)]
D = Annotated[Deps, Depends(get_deps)]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]
Limit = Annotated[int | None, Query(ge=1, le=500)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def page_limit(deps: Deps, limit: int | None) -> int:
    return limit or deps.settings.page_size



def fields(obj: Any) -> dict[str, Any]:
    return dict(obj.__dict__)
