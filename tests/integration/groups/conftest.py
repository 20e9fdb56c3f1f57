"""A real identity (uvicorn on a free port, its own fresh database) and the groups
service in-process on another fresh database, both on the session's broker.

Groups verifies identity's real tokens and learns staff and customers from
identity's events over the broker. Events of sync-iwds and enrollment are put on
their topics as those services would: through an outbox with their producer name
(groups' relay publishes it to the real topic; groups' consumer takes it from there).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from groups.app import create_app as create_groups
from groups.settings import GroupsSettings
from identity.app import create_app as create_identity
from identity.deps import Deps as IdentityDeps
from identity.service.accounts import create_staff
from identity.settings import IdentitySettings
from shared.schemas.base import Event
from shared.schemas.enrollment import CustomerEnrolled, ProgramStaffAuthorized
from shared.schemas.identity import CustomerAccountCreated
from shared.schemas.iwds import IwdsAccessGrant, IwdsRecordUpdated, IwdsStaffAccessUpdated
from shared.servicekit.db import create_pool
from shared.servicekit.outbox import Outbox
from tests.integration.enrollment.conftest import (
    IdentityServer,
    Staffer,
    _key,
    bearer,
    drop_database,
    fresh_database,
)
from tests.support.kit import wait_until
from tests.support.stack import Servers

STAFF_PASSWORD = "correct horse battery staple 42"
CUSTOMER_PASSWORD = "a long and memorable passphrase"


# a signed-in account: its id, username and token (staff or customer alike)
Person = Staffer


@dataclass
class Stack:
    servers: Servers
    identity: IdentityServer
    identity_settings: IdentitySettings
    identity_pool: asyncpg.Pool
    pool: asyncpg.Pool
    app: FastAPI
    client: httpx.AsyncClient   # groups, in-process
    ident: httpx.AsyncClient    # identity, over HTTP
    _admin: Person | None = field(default=None)
    _n: int = 0
    groups_server: IdentityServer | None = None  # groups over HTTP, for identity to ask

    async def token(self, username: str, password: str = STAFF_PASSWORD) -> str:
        r = await self.ident.post("/v1/auth/token",
                                  data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def new_staff(self, username: str, *roles: str) -> Person:
        staff_id = await create_staff(
            self.identity_pool, IdentityDeps.from_settings(self.identity_settings),
            username=username, first_name="Robin", last_name="Case", email=None,
            roles=list(roles or ("staff",)), password=STAFF_PASSWORD)
        await self.wait_row("SELECT true FROM staff WHERE id = $1", staff_id)
        return Person(staff_id, username, await self.token(username))

    async def admin(self) -> Person:
        if self._admin is None:
            self._admin = await self.new_staff("admin1", "admin")
        return self._admin

    async def new_customer(self, by: Person, first: str = "Marcus", last: str = "Oneil",
                           email: str | None = None) -> Person:
        """A real customer account made by staff in identity, signed in."""
        self._n += 1
        body: dict[str, Any] = {"first_name": first, "last_name": last,
                                "date_of_birth": f"19{60 + self._n % 40}-04-12"}
        if email:
            body["email"] = email
        r = await self.ident.post("/v1/customers", headers=by.headers, json=body)
        if r.status_code == 409:  # a look-alike: not the same person here
            body["rejected_account_ids"] = [c["account_id"] for c in r.json()["candidates"]]
            r = await self.ident.post("/v1/customers", headers=by.headers, json=body)
        assert r.status_code == 201, r.text
        made = r.json()
        first_token = await self.token(made["username"], made["temporary_password"])
        r = await self.ident.post("/v1/me/password", headers=bearer(first_token), json={
            "current_password": made["temporary_password"], "new_password": CUSTOMER_PASSWORD})
        assert r.status_code == 204, r.text
        cid = uuid.UUID(made["id"])
        await self.wait_row("SELECT true FROM customers WHERE id = $1", cid)
        return Person(cid, made["username"], await self.token(made["username"],
                                                               CUSTOMER_PASSWORD))

    async def wait_row(self, sql: str, *args: Any, timeout: float = 20) -> None:
        async def there() -> bool:
            return bool(await self.pool.fetchval(sql, *args))
        await wait_until(there, timeout=timeout, interval=0.02)

    async def emit(self, producer: str, *events: Event) -> None:
        """Put events on their topics as ``producer`` would (through an outbox)."""
        async with self.pool.acquire() as conn, conn.transaction():
            for e in events:
                await Outbox(producer).add(conn, e)

    async def emit_and_wait(self, producer: str, event: Event) -> None:
        """Emit and wait until groups' consumer has handled it."""
        async with self.pool.acquire() as conn, conn.transaction():
            env = await Outbox(producer).add(conn, event)
        await self.wait_row("SELECT true FROM inbox WHERE event_id = $1", env.event_id)

    async def known_customer(self, first: str = "Ana", last: str = "Diaz",
                             email: str | None = None, created_by: uuid.UUID | None = None
                             ) -> uuid.UUID:
        """A customer known to groups from identity's event (no sign-in needed)."""
        cid = uuid.uuid4()
        self._n += 1
        await self.emit_and_wait("identity", CustomerAccountCreated(
            account_id=cid, username=f"u{self._n}{cid.hex[:6]}", first_name=first,
            last_name=last, email=email, source="staff", created_by=created_by))
        return cid

    async def iwds_access(self, staff: Person, iwds_staff_id: str,
                          *grants: IwdsAccessGrant) -> None:
        await self.emit_and_wait("sync-iwds", IwdsStaffAccessUpdated(
            iwds_staff_id=iwds_staff_id, worknet_username=staff.username.upper(),
            grants=list(grants)))

    async def iwds_record(self, person: str, account: uuid.UUID | None, lwia: str,
                          office: str | None = None, case_manager: str | None = None) -> None:
        await self.emit_and_wait("sync-iwds", IwdsRecordUpdated(
            iwds_person_id=person, account_id=account, lwia_code=lwia, office_code=office,
            case_manager_staff_id=case_manager, status="active"))

    async def enroll(self, customer: uuid.UUID, program: str, staff: uuid.UUID) -> None:
        await self.emit_and_wait("enrollment", CustomerEnrolled(
            enrollment_id=uuid.uuid4(), program=program, customer_id=customer,
            staff_id=staff, enrolled_on=date(2026, 1, 5)))

    async def authorize(self, staff: Person, program: str) -> None:
        admin = await self.admin()
        await self.emit_and_wait("enrollment", ProgramStaffAuthorized(
            program=program, staff_id=staff.id, by=admin.id))

    async def access(self, staff: Person, customer: uuid.UUID) -> httpx.Response:
        return await self.client.get(f"/v1/access/customers/{customer}",
                                     headers=staff.headers)

    async def new_group(self, owner: Person, name: str = "Tuesday class",
                        parent: uuid.UUID | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if parent:
            body["parent_id"] = str(parent)
        r = await self.client.post("/v1/groups", headers=owner.headers, json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def outbox(self, event_type: str) -> list[dict[str, Any]]:
        import json
        rows = await self.pool.fetch(
            "SELECT value FROM outbox WHERE event_type = $1 ORDER BY created_at", event_type)
        return [json.loads(r["value"])["payload"] for r in rows]


Waiter = Callable[[], Awaitable[bool]]


def stack_env(servers: Servers, identity_dsn: str, groups_dsn: str) -> dict[str, str]:
    return {
        "CSC_ENV": "test",
        "CSC_KAFKA_BOOTSTRAP": servers.bootstrap,
        "CSC_KAFKA_CONSUMER_MODE": "assign",
        "CSC_BROKER_CHECK_INTERVAL": "0.5",
        "IDENTITY_DATABASE_URL": identity_dsn,
        "IDENTITY_SSN_KEYS": f"k1:{_key()}",
        "IDENTITY_SSN_ACTIVE_KEY": "k1",
        "IDENTITY_SSN_HMAC_KEY": _key(),
        "IDENTITY_DATA_KEY": _key(),
        "IDENTITY_OUTBOX_POLL_INTERVAL": "0.2",
        "GROUPS_DATABASE_URL": groups_dsn,
        "GROUPS_OUTBOX_POLL_INTERVAL": "0.2",
        "GROUPS_MESSAGE_POLL_INTERVAL": "0.2",
        # identity asks groups who reaches whom: generous on a loaded test machine
        "CSC_GROUPS_TIMEOUT_SECONDS": "10",
    }


@pytest_asyncio.fixture
async def identity_database(servers: Servers) -> AsyncIterator[str]:
    name = await fresh_database(servers)
    yield servers.pg_dsn(name)
    await drop_database(servers, name)


@pytest_asyncio.fixture
async def stack(
    servers: Servers, database: str, identity_database: str, monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Stack]:
    for k, v in stack_env(servers, identity_database, database).items():
        monkeypatch.setenv(k, v)
    identity_settings = IdentitySettings()
    identity = IdentityServer(create_identity(identity_settings))
    monkeypatch.setenv("CSC_JWKS_URL", f"{identity.url}/.well-known/jwks.json")
    # groups over real HTTP too: identity asks it who reaches whom (the kit's helper)
    app = create_groups(GroupsSettings())
    groups = IdentityServer(app)
    monkeypatch.setenv("CSC_GROUPS_URL", groups.url)
    await identity.start()
    await groups.start()
    pool = await create_pool(database, min_size=1, max_size=4)
    id_pool = await create_pool(identity_database, min_size=1, max_size=4)
    try:
        async with httpx.AsyncClient(base_url=groups.url, timeout=30) as client, \
                httpx.AsyncClient(base_url=identity.url, timeout=30) as ident:
            yield Stack(servers, identity, identity_settings, id_pool, pool, app, client,
                        ident, groups_server=groups)
    finally:
        await groups.stop()
        await identity.stop()
        await pool.close()
        await id_pool.close()
