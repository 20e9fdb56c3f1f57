"""Public self-registration: a person creates their own account."""

from __future__ import annotations

import uuid
from datetime import date

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from identity.api.common import Ids
from identity.service import registration
from shared.servicekit.runtime import Pool

router = APIRouter()


class RegistrationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=100)
    password: str = Field(max_length=1024)
    first_name: str = Field(max_length=200)
    last_name: str = Field(max_length=200)
    date_of_birth: date
    email: str | None = Field(default=None, max_length=320)
    ssn: str | None = Field(default=None, max_length=20)


class Registered(BaseModel):
    id: uuid.UUID
    username: str


@router.post("/v1/registrations", status_code=201, tags=["matching"])
async def register(body: RegistrationBody, pool: Pool, ids: Ids) -> Registered:
    """Public: a person creates their own account."""
    reg = registration.Registration(
        username=body.username, password=body.password, first_name=body.first_name,
        last_name=body.last_name, date_of_birth=body.date_of_birth, email=body.email,
        ssn=body.ssn)
    account_id, username = await registration.register(pool, ids, reg)
    return Registered(id=account_id, username=username)
