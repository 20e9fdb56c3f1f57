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
from tests.support.kit import wait_until
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


@pytest_asyncio.fixture
async def gateway_stack(
    servers: Servers, database: str, monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[GatewayStack]:
    names = [await fresh_database(servers) for _ in range(2)]
    identity_dsn, enrollment_dsn = (servers.pg_dsn(n) for n in names)
    for k, v in stack_env(servers, identity_dsn, enrollment_dsn).items():
        monkeypatch.setenv(k, v)
    identity_settings = IdentitySettings()
    identity = IdentityServer(create_identity(identity_settings))
    await identity.start()
    monkeypatch.setenv("CSC_JWKS_URL", f"{identity.url}/.well-known/jwks.json")
    enrollment = IdentityServer(create_enrollment(EnrollmentSettings()))
    await enrollment.start()
    dead = f"http://127.0.0.1:{free_port()}"  # services not on this stack: nothing listens
    for k, v in {"GATEWAY_DATABASE_URL": database, "GATEWAY_DATA_KEY": _key(),
                 "GATEWAY_IDENTITY_URL": identity.url,
                 "GATEWAY_ENROLLMENT_URL": enrollment.url, "GATEWAY_GROUPS_URL": dead,
                 "GATEWAY_SYNC_IWDS_URL": dead, "GATEWAY_NOTIFY_URL": dead,
                 "GATEWAY_READINESS_URL": dead,
                 "GATEWAY_AUTH_RATE_PER_MINUTE": "30"}.items():
        monkeypatch.setenv(k, v)
    gateway = IdentityServer(create_gateway(GatewaySettings()))
    await gateway.start()
    pools = [await create_pool(dsn, min_size=1, max_size=4)
             for dsn in (identity_dsn, enrollment_dsn, database)]
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            yield GatewayStack(f"http://localhost:{gateway.port}", identity.url,
                               enrollment.url, identity_settings, *pools, http)
    finally:
        for server in (gateway, enrollment, identity):
            await server.stop()
        for p in pools:
            await p.close()
        for n in names:
            await drop_database(servers, n)


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
