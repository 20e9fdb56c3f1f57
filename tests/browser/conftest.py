"""The real stack behind the pages: identity, enrollment and the gateway, each served by
uvicorn on a free port with its own fresh database, on the session's broker; and
Debian's Chromium driven by Playwright (never a downloaded browser).

Screenshots of every page a test visits go to .local/screenshots/<test>/; they are kept
(a test that fails leaves its last page there, named in the failure)."""

from __future__ import annotations

import base64
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from enrollment.app import create_app as create_enrollment
from enrollment.settings import EnrollmentSettings
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from identity.app import create_app as create_identity
from identity.deps import Deps as IdentityDeps
from identity.service.accounts import create_staff
from identity.settings import IdentitySettings
from shared.devstack.processes import free_port
from shared.servicekit.db import create_pool
from tests.integration.enrollment.conftest import (
    STAFF_PASSWORD,
    IdentityServer,
    drop_database,
    fresh_database,
    stack_env,
)
from tests.support.kit import PATIENCE, wait_until
from tests.support.stack import Servers

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_PRESENT = Path(CHROMIUM).exists()
AXE = ROOT / "services/gateway/node_modules/axe-core/axe.min.js"
SHOTS = ROOT / ".local/screenshots"
RC = "returning-citizens"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@dataclass
class Staff:
    id: uuid.UUID
    username: str
    token: str


@dataclass
class GatewayStack:
    url: str
    identity_url: str
    enrollment_url: str
    identity_settings: IdentitySettings
    identity_pool: asyncpg.Pool
    enrollment_pool: asyncpg.Pool
    gateway_pool: asyncpg.Pool
    http: httpx.AsyncClient

    async def token(self, username: str, password: str = STAFF_PASSWORD) -> str:
        r = await self.http.post(f"{self.identity_url}/v1/auth/token",
                                 data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def new_staff(self, username: str, *roles: str, first: str = "Robin",
                        last: str = "Case") -> Staff:
        staff_id = await create_staff(
            self.identity_pool, IdentityDeps.from_settings(self.identity_settings),
            username=username, first_name=first, last_name=last, email=None,
            roles=list(roles), password=STAFF_PASSWORD)

        async def known() -> bool:
            return bool(await self.enrollment_pool.fetchval(
                "SELECT true FROM staff WHERE id = $1", staff_id))
        await wait_until(known, timeout=20, interval=0.05)
        return Staff(staff_id, username, await self.token(username))

    async def reentry_worker(self, username: str = "rcase") -> Staff:
        """Staff with the reentry role, authorized for Returning Citizens by an admin."""
        staff = await self.new_staff(username, "reentry")
        admin = await self.new_staff(f"admin-{username}", "admin", first="Ada", last="Min")
        r = await self.http.put(f"{self.enrollment_url}/v1/programs/{RC}/staff/{staff.id}",
                                headers={"Authorization": f"Bearer {admin.token}"})
        assert r.status_code in (200, 201), r.text
        return staff


@dataclass
class FullStack(GatewayStack):
    """Every service behind the gateway: groups, notify (with a real SMTP sink),
    readiness and sync-iwds as well as identity and enrollment."""

    groups_url: str = ""
    notify_url: str = ""
    readiness_url: str = ""
    sync_iwds_url: str = ""
    groups_pool: asyncpg.Pool | None = None
    notify_pool: asyncpg.Pool | None = None
    readiness_pool: asyncpg.Pool | None = None
    sync_iwds_pool: asyncpg.Pool | None = None
    mail_dir: Path | None = None


class _Stack:
    """Starts the services in order and stops them in reverse."""

    def __init__(self, servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
        self.servers = servers
        self.monkeypatch = monkeypatch
        self.servers_up: list[Any] = []
        self.pools: list[asyncpg.Pool] = []
        self.databases: list[str] = []

    def env(self, values: dict[str, str]) -> None:
        for k, v in values.items():
            self.monkeypatch.setenv(k, v)

    async def database(self) -> str:
        name = await fresh_database(self.servers)
        self.databases.append(name)
        return self.servers.pg_dsn(name)

    async def pool(self, dsn: str) -> asyncpg.Pool:
        pool = await create_pool(dsn, min_size=1, max_size=4)
        self.pools.append(pool)
        return pool

    async def serve(self, app: Any) -> IdentityServer:
        server = IdentityServer(app)
        await server.start()
        self.servers_up.append(server)
        return server

    async def close(self) -> None:
        for server in reversed(self.servers_up):
            await server.stop()
        for p in self.pools:
            await p.close()
        for n in self.databases:
            await drop_database(self.servers, n)


async def _start(servers: Servers, database: str, monkeypatch: pytest.MonkeyPatch,
                 st: _Stack, *, everything: bool, mail_dir: Path | None) -> FullStack:
    identity_dsn, enrollment_dsn = await st.database(), await st.database()
    st.env(stack_env(servers, identity_dsn, enrollment_dsn))
    identity_settings = IdentitySettings()
    identity = await st.serve(create_identity(identity_settings))
    st.env({"CSC_JWKS_URL": f"{identity.url}/.well-known/jwks.json"})
    dead = f"http://127.0.0.1:{free_port()}"  # services not on this stack: nothing listens
    urls = {"groups": dead, "notify": dead, "readiness": dead, "sync_iwds": dead}
    extra: dict[str, Any] = {}
    if everything:
        from groups.app import create_app as create_groups
        from groups.settings import GroupsSettings
        from notify.app import create_app as create_notify
        from notify.settings import NotifySettings
        from readiness.app import create_app as create_readiness
        from readiness.settings import ReadinessSettings
        from shared.devstack.smtp_sink import FailureRules, MailSink
        from sync_iwds.app import create_app as create_sync_iwds
        from sync_iwds.settings import SyncIwdsSettings

        assert mail_dir is not None
        sink = MailSink(mail_dir, smtp_port=0, web_port=None, rules=FailureRules())
        await sink.start()
        st.servers_up.insert(0, sink)  # stopped last
        groups_dsn, notify_dsn, readiness_dsn, iwds_dsn = (
            await st.database(), await st.database(), await st.database(), await st.database())
        st.env({"GROUPS_DATABASE_URL": groups_dsn, "GROUPS_OUTBOX_POLL_INTERVAL": "0.2",
                "GROUPS_MESSAGE_POLL_INTERVAL": "0.2",
                "NOTIFY_DATABASE_URL": notify_dsn, "NOTIFY_OUTBOX_POLL_INTERVAL": "0.2",
                "NOTIFY_SMTP_PORT": str(sink.smtp_port), "NOTIFY_SMTP_POOL_SIZE": "2",
                "NOTIFY_WORKER_POLL_INTERVAL": "0.1",
                "READINESS_DATABASE_URL": readiness_dsn, "READINESS_OUTBOX_POLL_INTERVAL": "0.2",
                "SYNC_IWDS_DATABASE_URL": iwds_dsn, "SYNC_IWDS_OUTBOX_POLL_INTERVAL": "0.2"})
        groups = await st.serve(create_groups(GroupsSettings()))
        st.env({"CSC_GROUPS_URL": groups.url, "READINESS_GROUPS_URL": groups.url})
        # identity asks groups whether staff reach a customer, and it started before
        # groups had an address: point it at groups now, as CSC_GROUPS_URL does at start
        from shared.servicekit.access import GroupsAccess

        # (a generous timeout: on a loaded test machine groups may take over a second)
        st.env({"CSC_GROUPS_TIMEOUT_SECONDS": "10", "READINESS_GROUPS_TIMEOUT_SECONDS": "10"})
        ids = identity.app.state.runtime.deps
        old_access, ids.groups_access = ids.groups_access, GroupsAccess.from_env()
        if old_access is not None:
            await old_access.aclose()
        notify = await st.serve(create_notify(NotifySettings()))
        readiness = await st.serve(create_readiness(ReadinessSettings()))
        sync_iwds = await st.serve(create_sync_iwds(SyncIwdsSettings()))
        urls = {"groups": groups.url, "notify": notify.url, "readiness": readiness.url,
                "sync_iwds": sync_iwds.url}
        extra = {"groups_pool": await st.pool(groups_dsn),
                 "notify_pool": await st.pool(notify_dsn),
                 "readiness_pool": await st.pool(readiness_dsn),
                 "sync_iwds_pool": await st.pool(iwds_dsn), "mail_dir": mail_dir}
    enrollment = await st.serve(create_enrollment(EnrollmentSettings()))
    st.env({"GATEWAY_DATABASE_URL": database, "GATEWAY_DATA_KEY": _key(),
            "GATEWAY_IDENTITY_URL": identity.url, "GATEWAY_ENROLLMENT_URL": enrollment.url,
            "GATEWAY_GROUPS_URL": urls["groups"], "GATEWAY_SYNC_IWDS_URL": urls["sync_iwds"],
            "GATEWAY_NOTIFY_URL": urls["notify"], "GATEWAY_READINESS_URL": urls["readiness"],
            "GATEWAY_AUTH_RATE_PER_MINUTE": "30"})
    gateway = await st.serve(create_gateway(GatewaySettings()))
    http = httpx.AsyncClient(timeout=30)
    return FullStack(f"http://localhost:{gateway.port}", identity.url, enrollment.url,
                     identity_settings, await st.pool(identity_dsn),
                     await st.pool(enrollment_dsn), await st.pool(database), http,
                     groups_url=urls["groups"], notify_url=urls["notify"],
                     readiness_url=urls["readiness"],
                     sync_iwds_url=urls["sync_iwds"], **extra)


@pytest_asyncio.fixture
async def gateway_stack(
    servers: Servers, database: str, monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[GatewayStack]:
    """identity, enrollment and the gateway; the other services' addresses answer nothing."""
    st = _Stack(servers, monkeypatch)
    try:
        stack = await _start(servers, database, monkeypatch, st, everything=False,
                             mail_dir=None)
        async with stack.http:
            yield stack
    finally:
        await st.close()


@pytest_asyncio.fixture
async def full_stack(
    servers: Servers, database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> AsyncIterator[FullStack]:
    """Every service, each on its own port and database, and an SMTP sink writing to
    ``mail_dir``."""
    st = _Stack(servers, monkeypatch)
    try:
        stack = await _start(servers, database, monkeypatch, st, everything=True,
                             mail_dir=tmp_path / "mail")
        async with stack.http:
            yield stack
    finally:
        await st.close()


class Browser:
    """One Chromium for a test; ``page()`` opens a fresh context (its own cookies),
    as a second browser would."""

    def __init__(self, pw: Any, browser: Any, test_name: str) -> None:
        self.pw, self.browser = pw, browser
        self.dir = SHOTS / re.sub(r"[^\w.-]+", "_", test_name)
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.count = 0
        self.last: Path | None = None

    async def page(self) -> Any:
        context = await self.browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000 * PATIENCE)
        context.set_default_navigation_timeout(30_000 * PATIENCE)
        return await context.new_page()

    async def shot(self, page: Any, name: str) -> Path:
        self.count += 1
        path = self.dir / f"{self.count:02d}-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        self.last = path
        return path


async def axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
             values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.map(n => n.target.join(' '))}))""")
    return list(result)


@pytest_asyncio.fixture
async def browser(request: pytest.FixtureRequest) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright
    from playwright.async_api import expect as playwright_expect

    # Playwright's own deadlines (5 s for an expectation, 30 s for a click or a page)
    # are failure bounds too: stretched like every other wait of the suite on a loaded
    # machine, where all seven services share the test's process
    playwright_expect.set_options(timeout=5_000 * PATIENCE)

    if not CHROMIUM_PRESENT:
        pytest.fail("Debian's chromium is missing: `make chromium` installs it (apt-get)")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM,
                                            args=["--no-sandbox", "--disable-gpu"])
        b = Browser(pw, chromium, request.node.name)
        try:
            yield b
        finally:
            failed = getattr(request.node, "rep_call", None)
            if failed is not None and failed.failed and b.last is not None:
                print(f"\nlast screenshot: {b.last}")
            await chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
