"""Staff who reach a message's group see its status: notify asks the groups service,
served here over real HTTP on its own database (the same token keys as notify), with
the caller's own token; 404 for staff who do not reach it, 503 when groups is away."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import pytest_asyncio

from groups.app import SPEC as GROUPS_SPEC
from groups.settings import GroupsSettings
from shared.schemas.groups import GroupMessageRequested
from shared.servicekit.access import GroupsAccess
from shared.servicekit.auth import JwksVerifier
from shared.servicekit.runtime import build_app
from tests.integration.enrollment.conftest import (
    IdentityServer,
    drop_database,
    fresh_database,
)
from tests.integration.notify.conftest import NotifyStack, Person
from tests.support.stack import Servers


@pytest_asyncio.fixture
async def groups(
    stack: NotifyStack, servers: Servers, monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[IdentityServer]:
    """groups over HTTP, trusting the test's token keys; notify asks it from now on."""
    name = await fresh_database(servers)
    monkeypatch.setenv("GROUPS_DATABASE_URL", servers.pg_dsn(name))
    monkeypatch.setenv("GROUPS_OUTBOX_POLL_INTERVAL", "0.2")
    verifier = JwksVerifier.from_jwks(stack.signer.jwks(), issuer="csc-identity",
                                      audience="groups")
    server = IdentityServer(build_app(GROUPS_SPEC, GroupsSettings(), verifier=verifier))
    await server.start()
    access = GroupsAccess(server.url, timeout=5.0)
    runtime = stack.app.state.runtime
    before = runtime.deps
    runtime.deps = replace(before, groups=access)
    try:
        yield server
    finally:
        runtime.deps = before
        await access.aclose()
        await server.stop()
        await drop_database(servers, name)


async def new_group(stack: NotifyStack, groups: IdentityServer, owner: Person,
                    parent: uuid.UUID | None = None) -> uuid.UUID:
    body = {"name": "Tuesday class", **({"parent_id": str(parent)} if parent else {})}
    async with httpx.AsyncClient(base_url=groups.url, timeout=30) as client:
        r = await client.post("/v1/groups", headers=owner.headers, json=body)
    assert r.status_code == 201, r.text
    return uuid.UUID(r.json()["id"])


async def test_staff_who_reach_the_group_see_the_message_others_get_404(
    stack: NotifyStack, groups: IdentityServer,
) -> None:
    ann = await stack.customer("ann")
    sender, owner, sub_owner, stranger, admin = (
        stack.staff(), stack.staff(), stack.staff(), stack.staff(), stack.staff("admin"))
    group = await new_group(stack, groups, owner)
    subgroup = await new_group(stack, groups, owner, parent=group)
    # the subgroup's message: its parent's owner reaches it too; the sender made neither
    event = GroupMessageRequested(
        message_id=uuid.uuid4(), group_id=subgroup, staff_id=sender.id,
        subject="Job fair", body="Bring your resume.", recipient_ids=[ann.id],
        chunk_index=0, chunk_count=1)
    await stack.publish(event)
    mid = event.message_id
    await stack.wait_for("SELECT count(*) = 2 FROM deliveries WHERE message_id = $1", mid)
    await new_group(stack, groups, sub_owner)  # owns a group, but not this one

    status, deliveries, resend = (f"/v1/messages/{mid}", f"/v1/messages/{mid}/deliveries",
                                  f"/v1/messages/{mid}/resend-failed")
    for who in (sender, owner, admin):
        r = await stack.client.get(status, headers=who.headers)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == 2
        r = await stack.client.get(deliveries, headers=who.headers)
        assert r.status_code == 200 and len(r.json()["items"]) == 2
    r = await stack.client.post(resend, headers=owner.headers)
    assert r.status_code == 200 and r.json() == {"message_id": str(mid), "requeued": 0}

    for who in (stranger, sub_owner):
        assert (await stack.client.get(status, headers=who.headers)).status_code == 404
        assert (await stack.client.get(deliveries, headers=who.headers)).status_code == 404
        assert (await stack.client.post(resend, headers=who.headers)).status_code == 404
    # a message that does not exist is 404 for everyone, groups or not
    r = await stack.client.get(f"/v1/messages/{uuid.uuid4()}", headers=owner.headers)
    assert r.status_code == 404
    # customers are not staff
    assert (await stack.client.get(status, headers=ann.headers)).status_code == 403
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'notify.resend_failed'") == 1


async def test_groups_away_is_503_never_a_silent_allow(
    stack: NotifyStack, groups: IdentityServer,
) -> None:
    ann = await stack.customer("ann")
    sender, owner, stranger = stack.staff(), stack.staff(), stack.staff()
    group = await new_group(stack, groups, owner)
    event = GroupMessageRequested(
        message_id=uuid.uuid4(), group_id=group, staff_id=sender.id, subject="Hello",
        body="A note.", recipient_ids=[ann.id], chunk_index=0, chunk_count=1)
    await stack.publish(event)
    mid = event.message_id
    await stack.wait_for("SELECT true FROM deliveries WHERE message_id = $1", mid)
    assert (await stack.client.get(f"/v1/messages/{mid}", headers=owner.headers)
            ).status_code == 200

    await groups.stop()
    for who in (owner, stranger):
        for method, path in (("GET", f"/v1/messages/{mid}"),
                             ("GET", f"/v1/messages/{mid}/deliveries"),
                             ("POST", f"/v1/messages/{mid}/resend-failed")):
            r = await stack.client.request(method, path, headers=who.headers)
            assert r.status_code == 503, (path, r.text)
            assert r.json()["type"].endswith("/access-unavailable")
            assert r.headers["retry-after"] == "5"
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'notify.resend_failed'") == 0
    # the sender is known here without asking anyone
    r = await stack.client.get(f"/v1/messages/{mid}", headers=sender.headers)
    assert r.status_code == 200, r.text
