"""sync-iwds on a fresh database of the session's PostgreSQL (and broker, where used)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from shared.schemas.envelope import Envelope
from shared.servicekit.auth import JwksVerifier
from shared.servicekit.db import KIT_MIGRATIONS, create_pool, migrate
from sync_iwds.app import SPEC, create_app
from sync_iwds.deps import Deps, build_deps
from sync_iwds.domain import PARTICIPANT_COLUMNS, STAFF_COLUMNS
from sync_iwds.settings import SyncIwdsSettings
from tests.support.keys import TestSigner
from tests.support.kit import wait_until
from tests.support.stack import Servers


@pytest_asyncio.fixture
async def iwds_pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(database)
    try:
        await migrate(conn, [("kit", KIT_MIGRATIONS), ("sync-iwds", SPEC.migrations)])
    finally:
        await conn.close()
    pool = await create_pool(database, min_size=1, max_size=6)
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def deps(database: str) -> Deps:
    return await build_deps(SyncIwdsSettings(database_url=database, stage_batch_rows=100,
                                             event_batch=100))


def person(pid: str, **over: Any) -> dict[str, Any]:
    row = {"iwds_person_id": pid, "worknet_account_id": "", "lwia_code": "07",
           "office_code": "OF1", "case_manager_staff_id": "S1", "first_name": "Ann",
           "last_name": f"Lee{pid}", "date_of_birth": "1990-04-01", "program": "WIOA",
           "status": "active", "exit_date": "", "updated_at": "2026-11-01T10:00:00+00:00"}
    row.update(over)
    return row


def write_csv(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str]
              = PARTICIPANT_COLUMNS) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue())
    return path


def write_staff(path: Path, rows: list[tuple[str, str, str, str, str]]) -> Path:
    return write_csv(path, [dict(zip(STAFF_COLUMNS, r, strict=True)) for r in rows],
                     STAFF_COLUMNS)


async def events(pool: asyncpg.Pool, event_type: str | None = None) -> list[dict[str, Any]]:
    """The outbox's events, each parsed back through Envelope and its registered model
    (the bulk events are built in SQL: this keeps them to the contract)."""
    rows = await pool.fetch("SELECT event_type, subject, value FROM outbox ORDER BY id")
    out = []
    for r in rows:
        env = Envelope.from_bytes(r["value"])
        assert env.type == r["event_type"] and env.subject == r["subject"]
        assert env.producer == "sync-iwds"
        event = env.parse_payload()
        assert event.subject_key() == env.subject
        if event_type is None or r["event_type"] == event_type:
            out.append({"type": env.type, **event.model_dump(mode="json")})
    return out


async def clear_outbox(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM outbox")


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    signer: TestSigner
    bootstrap: str

    def client_headers(self, scope: str = "iwds:feed", **claims: Any) -> dict[str, str]:
        token = self.signer.token(str(uuid.uuid4()), kind="client", scope=scope, **claims)
        return {"Authorization": f"Bearer {token}"}

    def staff_headers(self, *roles: str) -> dict[str, str]:
        token = self.signer.token(str(uuid.uuid4()), kind="staff", roles=list(roles))
        return {"Authorization": f"Bearer {token}"}

    async def wait_run(self, run_id: str, status: str = "done") -> dict[str, Any]:
        admin = self.staff_headers("admin")
        seen: dict[str, Any] = {}

        async def finished() -> bool:
            r = await self.client.get(f"/v1/runs/{run_id}", headers=admin)
            assert r.status_code == 200, r.text
            seen.update(r.json())
            return bool(seen["status"] != "running")

        await wait_until(finished, timeout=30)
        assert seen["status"] == status, seen
        return seen


@pytest_asyncio.fixture
async def iwds_service(servers: Servers, database: str, monkeypatch: pytest.MonkeyPatch
                       ) -> AsyncIterator[Service]:
    for k, v in {"CSC_KAFKA_BOOTSTRAP": servers.bootstrap, "CSC_KAFKA_CONSUMER_MODE": "assign",
                 "CSC_BROKER_CHECK_INTERVAL": "0.5"}.items():
        monkeypatch.setenv(k, v)
    signer = TestSigner()
    settings = SyncIwdsSettings(database_url=database, outbox_poll_interval=0.2,
                                stage_batch_rows=100)
    app = create_app(settings, verifier=JwksVerifier.from_jwks(
        signer.jwks(), issuer=signer.issuer, audience="sync-iwds"))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sync-iwds") as client:
        pool = app.state.runtime.pool
        yield Service(app, client, pool, signer, servers.bootstrap)
