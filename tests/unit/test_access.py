"""The kit's access check against groups: 200 yes, 404 no, anything else 503 (never a
silent allow), over real sockets for "down" and "too slow"."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from shared.servicekit.access import AccessUnavailable, GroupsAccess, require_customer_access
from shared.servicekit.auth import JwksVerifier, Principal
from shared.servicekit.http import install_problem_handlers

CUSTOMER = uuid.uuid4()


def answering(status: int, body: Any = None, seen: list[httpx.Request] | None = None
              ) -> GroupsAccess:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if body is None:
            return httpx.Response(status, content=b"")
        return httpx.Response(status, json=body)
    return GroupsAccess(client=httpx.AsyncClient(transport=httpx.MockTransport(handler),
                                                 base_url="http://groups"))


async def test_200_is_yes_and_the_callers_token_is_passed_on() -> None:
    seen: list[httpx.Request] = []
    access = answering(200, {"customer_id": str(CUSTOMER), "via": [
        {"group_id": None, "kind": "admin", "name": "all", "reason": "admin"}]}, seen)
    assert await access.reaches("tok-123", CUSTOMER) is True
    assert seen[0].url.path == f"/v1/access/customers/{CUSTOMER}"
    assert seen[0].headers["authorization"] == "Bearer tok-123"


async def test_404_is_no() -> None:
    access = answering(404, {"status": 404})
    assert await access.reaches("t", CUSTOMER) is False
    from shared.servicekit.errors import NotFound
    with pytest.raises(NotFound):
        await access.require("t", CUSTOMER)


@pytest.mark.parametrize("status", [401, 403, 500, 502, 503])
async def test_any_other_answer_is_unavailable_not_allowed(status: int) -> None:
    with pytest.raises(AccessUnavailable) as err:
        await answering(status, {"x": 1}).reaches("t", CUSTOMER)
    assert err.value.status == 503


async def test_a_200_without_paths_is_not_taken_as_yes() -> None:
    with pytest.raises(AccessUnavailable):
        await answering(200, {"customer_id": str(CUSTOMER), "via": []}).reaches("t", CUSTOMER)
    with pytest.raises(AccessUnavailable):
        await answering(200, None).reaches("t", CUSTOMER)


async def test_groups_down_is_503() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    access = GroupsAccess(f"http://127.0.0.1:{port}", timeout=0.5)
    try:
        with pytest.raises(AccessUnavailable, match="unreachable"):
            await access.reaches("t", CUSTOMER)
    finally:
        await access.aclose()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A server that accepts connections and never answers."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_groups_too_slow_is_503(silent_port: int) -> None:
    access = GroupsAccess(f"http://127.0.0.1:{silent_port}", timeout=0.2)
    try:
        with pytest.raises(AccessUnavailable, match="in time"):
            await access.reaches("t", CUSTOMER)
    finally:
        await access.aclose()


def _app(access: GroupsAccess, principal: Principal) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.groups_access = access
    app.state.verifier = JwksVerifier.from_jwks({"keys": []}, issuer="i", audience="a")

    @app.get("/v1/customers/{customer_id}")
    async def read(customer_id: uuid.UUID,
                   p: Annotated[Principal, Depends(require_customer_access())]
                   ) -> dict[str, str]:
        return {"id": str(customer_id)}

    from shared.servicekit.auth import current_principal
    app.dependency_overrides[current_principal] = lambda: principal
    return app


@pytest.mark.parametrize(("status", "expected"), [(200, 200), (404, 404), (500, 503)])
async def test_the_dependency_answers_404_or_503_for_staff(status: int, expected: int) -> None:
    body = {"customer_id": str(CUSTOMER), "via": [{"kind": "admin"}]} if status == 200 else {}
    staff = Principal(str(uuid.uuid4()), "staff")
    app = _app(answering(status, body), staff)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://svc") as client:
        r = await client.get(f"/v1/customers/{CUSTOMER}", headers={"Authorization": "Bearer x"})
    assert r.status_code == expected, r.text
    if expected == 503:
        assert r.json()["type"].endswith("access-unavailable")


async def test_the_dependency_lets_a_customer_see_only_themself() -> None:
    seen: list[httpx.Request] = []
    me = Principal(str(CUSTOMER), "customer")
    app = _app(answering(200, {}, seen), me)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://svc") as client:
        assert (await client.get(f"/v1/customers/{CUSTOMER}")).status_code == 200
        assert (await client.get(f"/v1/customers/{uuid.uuid4()}")).status_code == 404
    assert seen == []  # groups is not asked about customers


async def test_a_kept_alive_connection_groups_closed_is_asked_once_more_then_503() -> None:
    """The race between reusing an idle connection and groups closing it (uvicorn's 5 s
    keep-alive) is a read error on a GET: asked once more, not answered 503; twice in a
    row, groups is unreachable."""
    calls: list[str] = []
    via = {"customer_id": str(CUSTOMER), "via": [
        {"group_id": None, "kind": "admin", "name": "all", "reason": "admin"}]}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) in (1, 3, 4):
            raise httpx.ReadError("connection closed", request=request)
        return httpx.Response(200, json=via)

    access = GroupsAccess(client=httpx.AsyncClient(transport=httpx.MockTransport(handler),
                                                   base_url="http://groups"))
    assert await access.reaches("t", CUSTOMER) is True
    assert len(calls) == 2
    with pytest.raises(AccessUnavailable, match="unreachable"):
        await access.reaches("t", CUSTOMER)
    assert len(calls) == 4
