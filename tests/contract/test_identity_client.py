"""enrollment's client of identity against identity's real app (real PostgreSQL):
the request and answer models in shared/contracts/identity.py are what both sides
speak, so a change on one side that the other cannot read fails here."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

import asyncpg
import httpx
import jwt
import pytest
import pytest_asyncio
from fastapi import FastAPI

from enrollment.domain.programs import IdempotencyKeyReused, PossibleDuplicates
from enrollment.repository.identity import IdentityClient, IdentityUnauthorized, IdentityUnavailable
from identity.app import create_app
from identity.settings import IdentitySettings
from shared.contracts.identity import CustomerCreate, Identifier, MatchQuery
from shared.servicekit.delegation import NarrowedBearer, TokenExchange
from shared.servicekit.errors import InvalidInput
from shared.servicekit.http import Problem
from shared.servicekit.logs import correlation_id
from tests.integration.identity.conftest import identity_env  # noqa: F401 - a fixture
from tests.integration.identity.test_journey import STAFF_PASSWORD, make_staff

SSN = "219-09-9999"


@pytest_asyncio.fixture
async def identity_app(identity_env: dict[str, str]) -> AsyncIterator[FastAPI]:  # noqa: F811
    app = create_app(IdentitySettings())
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture
async def client(identity_app: FastAPI) -> AsyncIterator[IdentityClient]:
    c = IdentityClient("http://identity", timeout=10,
                       transport=httpx.ASGITransport(app=identity_app))
    yield c
    await c.aclose()


@pytest_asyncio.fixture
async def token(identity_app: FastAPI) -> str:
    await make_staff()
    transport = httpx.ASGITransport(app=identity_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as http:
        r = await http.post("/v1/auth/token",
                            data={"username": "rcaseworker", "password": STAFF_PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def person(**changes: object) -> CustomerCreate:
    body: dict[str, object] = {
        "first_name": "Marcus", "last_name": "O'Neil", "date_of_birth": date(1988, 4, 12),
        "ssn": SSN, "identifiers": [Identifier(kind="idoc_number", value="R12345")]}
    body.update(changes)
    return CustomerCreate.model_validate(body)


async def test_create_match_and_confirm_speak_the_same_models(
    client: IdentityClient, token: str, pool: asyncpg.Pool
) -> None:
    created = await client.create_customer(token, person(), "contract-1")
    assert created.username.startswith("m") and len(created.temporary_password) >= 15
    again = await client.create_customer(token, person(), "contract-1")
    assert (again.id, again.username) == (created.id, created.username)

    with pytest.raises(IdempotencyKeyReused):
        await client.create_customer(token, person(first_name="Marc"), "contract-1")

    correlation_id.set("contract-request-1")
    try:
        [found] = await client.match(token, MatchQuery(
            first_name="Marcus", last_name="O'Neil", date_of_birth=date(1988, 4, 12), ssn=SSN))
    finally:
        correlation_id.set(None)
    assert found.account_id == created.id and found.ssn_last4 == "9999"
    assert found.band == "strong" and found.evidence and found.score is not None
    assert SSN not in found.model_dump_json()
    # the caller's request id reached identity's audit log
    assert await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'match.search'"
        " AND request_id = 'contract-request-1'") == 1

    with pytest.raises(PossibleDuplicates) as dup:
        await client.create_customer(token, person(), None)
    assert [c.account_id for c in dup.value.candidates] == [created.id]

    await client.confirm_match(token, created.id, [])
    with pytest.raises(InvalidInput) as bad:
        await client.confirm_match(token, uuid.uuid4(), [])
    assert [e.field for e in bad.value.errors] == ["link_account_id"]


async def test_refusals_arrive_as_the_callers_errors(client: IdentityClient, token: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        await client.create_customer(token, person(date_of_birth=date(2999, 1, 1),
                                                   ssn="000-12-3456"), None)
    assert {e.field for e in bad.value.errors} == {"date_of_birth", "ssn"}
    assert all("000-12-3456" not in e.reason for e in bad.value.errors)

    with pytest.raises(IdentityUnauthorized):
        await client.match("not-a-token", MatchQuery(first_name="Marcus"))


async def test_identity_away_is_unavailable() -> None:
    away = IdentityClient("http://127.0.0.1:9", timeout=2)
    try:
        with pytest.raises(IdentityUnavailable) as caught:
            await away.match("token", {"first_name": "Marcus"})
        assert "identity is unreachable" in str(caught.value)
    finally:
        await away.aclose()


async def test_the_client_sends_identity_a_token_narrowed_to_identity(
    identity_app: FastAPI, token: str
) -> None:
    """As enrollment builds it: the staff member's token is exchanged at identity for one
    naming identity alone before the call; a token not for identity is refused (403)."""
    seen: list[str] = []

    async def keep(request: httpx.Request) -> None:
        if request.url.path == "/v1/matches":
            seen.append(request.headers["authorization"].partition(" ")[2])

    transport = httpx.ASGITransport(app=identity_app)
    exchange = TokenExchange("http://identity/v1/auth/token", transport=transport)
    narrowed = IdentityClient("http://identity", timeout=10, transport=transport,
                              auth=NarrowedBearer(exchange, "identity"))
    narrowed.calls.http.event_hooks["request"].append(keep)
    try:
        await narrowed.match(token, MatchQuery(first_name="Marcus", last_name="O'Neil",
                                               date_of_birth=date(1988, 4, 12)))
        await narrowed.match(token, MatchQuery(first_name="Marcus", last_name="O'Neil",
                                               date_of_birth=date(1988, 4, 12)))
        assert len(seen) == 2 and seen[0] == seen[1]  # exchanged once, then cached
        claims = jwt.decode(seen[0], options={"verify_signature": False})
        assert claims["aud"] == ["identity"] and seen[0] != token
        groups_only = await exchange.for_audience(token, "groups")
        with pytest.raises(Problem) as refused:
            await narrowed.match(groups_only, MatchQuery(first_name="Marcus"))
        assert refused.value.status == 403
    finally:
        await narrowed.aclose()
