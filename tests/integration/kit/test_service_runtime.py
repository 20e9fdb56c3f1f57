"""A service built by the kit: request id into events, causation through
handlers, readiness naming what is missing, and the operators' dlq commands."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from typer.testing import CliRunner

from shared.cli.main import app as csc
from shared.devstack.processes import LocalBroker, free_port
from shared.schemas.envelope import Envelope
from shared.servicekit.outbox import Outbox
from shared.servicekit.runtime import Pool, ServiceSpec, build_app
from shared.servicekit.settings import ServiceSettings
from tests.support.kit import KitNode, event_type, unique_topic, wait_until
from tests.support.stack import Servers

OUTBOX = Outbox(producer="demo")


def _demo_app(dsn: str, bootstrap: str, topic: str, migrations: Path) -> FastAPI:
    Thing = event_type(topic)
    router = APIRouter()

    @router.post("/v1/things/{thing_id}", status_code=201)
    async def create(thing_id: str, pool: Pool) -> dict[str, str]:
        async with pool.acquire() as conn, conn.transaction():
            env = await OUTBOX.add(conn, Thing(thing_id=thing_id, seq=0))
        return {"event_id": str(env.event_id)}

    settings = ServiceSettings.model_validate({  # system-wide fields go by their CSC_ names
        "CSC_ENV": "test", "database_url": dsn, "CSC_KAFKA_BOOTSTRAP": bootstrap,
        "CSC_BROKER_CHECK_INTERVAL": 0.2,
    })
    spec = ServiceSpec(name="demo", settings_cls=ServiceSettings, migrations=migrations,
                       routers=(router,))
    return build_app(spec, settings)


@contextlib.asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            yield client


@pytest.fixture
def empty_migrations(tmp_path: Path) -> Path:
    d = tmp_path / "migrations"
    d.mkdir()
    return d


async def test_request_id_travels_into_the_events_it_causes(
    servers: Servers, database: str, pool: asyncpg.Pool, empty_migrations: Path
) -> None:
    app = _demo_app(database, servers.bootstrap, unique_topic(), empty_migrations)
    async with _running(app) as client:
        r = await client.post("/v1/things/t1", headers={"X-Request-ID": "req-42"})
        assert r.status_code == 201
        assert r.headers["x-request-id"] == "req-42"
    value = await pool.fetchval("SELECT value FROM outbox")
    env = Envelope.from_bytes(bytes(value))
    assert env.correlation_id == "req-42"
    assert env.producer == "demo" and env.subject == "t1"


async def test_readiness_names_the_missing_broker(
    database: str, empty_migrations: Path
) -> None:
    dead_broker = f"127.0.0.1:{free_port()}"
    app = _demo_app(database, dead_broker, unique_topic(), empty_migrations)
    async with _running(app) as client:
        # a look at the broker has surely been taken (not just the watch's first state)
        assert await app.state.runtime.watch.check() is None
        assert app.state.runtime.watch.reachable is False
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["checks"]["broker"] == "unavailable"
        assert body["checks"]["database"] == "ok"
        assert "broker" in body["detail"]
        assert (await client.get("/healthz")).status_code == 200


async def test_a_broker_that_was_up_and_is_lost_makes_the_service_unready_until_back(
    database: str, empty_migrations: Path, tmp_path: Path
) -> None:
    broker = LocalBroker(free_port())
    broker.start()
    try:
        app = _demo_app(database, broker.bootstrap, unique_topic(), empty_migrations)
        async with _running(app) as client:

            async def ready_is(status: int) -> bool:
                return (await client.get("/readyz")).status_code == status

            await wait_until(lambda: ready_is(200), timeout=30)
            broker.stop()
            await wait_until(lambda: ready_is(503), timeout=30)
            body = (await client.get("/readyz")).json()
            assert body["checks"] == {"database": "ok", "broker": "unavailable"}
            assert body["detail"] == "unavailable: broker"
            assert (await client.get("/healthz")).status_code == 200
            broker.start()  # back (empty: memory storage), and ready again
            await wait_until(lambda: ready_is(200), timeout=60)
    finally:
        broker.stop()


async def test_readiness_is_200_when_both_answer(
    servers: Servers, database: str, empty_migrations: Path
) -> None:
    app = _demo_app(database, servers.bootstrap, unique_topic(), empty_migrations)
    async with _running(app) as client:
        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await wait_until(ready, timeout=20)
        body = (await client.get("/readyz")).json()
        assert body["checks"] == {"database": "ok", "broker": "ok"}


async def test_handler_events_carry_causation_and_correlation(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    follow_topic = unique_topic()
    Follow = event_type(follow_topic, name="FollowedUp")

    async def follow_up(conn: Any, deps: Any, event: Any, envelope: Envelope) -> None:
        await OUTBOX.add(conn, Follow(thing_id=event.thing_id, seq=event.seq))

    node = KitNode(database, pool, servers.bootstrap, unique_topic(), handler=follow_up)
    await node.start(relay=False)
    try:
        from shared.servicekit.logs import bound_context

        with bound_context(request_id="req-7"):
            async with pool.acquire() as conn, conn.transaction():
                first = await node.outbox.add(conn, node.Thing(thing_id="c", seq=0))
        await node.relay.publish_once()

        async def followed() -> bool:
            return bool(await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE topic = $1", follow_topic))

        await wait_until(followed)
        value = await pool.fetchval("SELECT value FROM outbox WHERE topic = $1", follow_topic)
        env = Envelope.from_bytes(bytes(value))
        assert env.causation_id == str(first.event_id)
        assert env.correlation_id == "req-7"
    finally:
        await node.relay._drop_producer()
        await node.stop()


def test_csc_dlq_list_and_replay_report_and_fail_cleanly(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_DATABASE_URL", database)
    monkeypatch.setenv("CSC_ENV", "dev")
    runner = CliRunner()
    result = runner.invoke(csc, ["dlq", "list", "--service", "identity"])
    assert result.exit_code == 0 and "no dead letters" in result.output

    async def plant() -> int:
        conn = await asyncpg.connect(database)
        try:
            return int(await conn.fetchval(
                "INSERT INTO dead_letter (consumer, event_id, event_type, topic, partition,"
                ' "offset", value, error, attempts) VALUES'
                " ('identity', $1, 'CustomerEnrolled', 'enrollment.enrollments.v1', 2, 17,"
                " '{}'::bytea, 'boom', 5) RETURNING id", uuid.uuid4()))
        finally:
            await conn.close()

    dl_id = asyncio.run(plant())
    result = runner.invoke(csc, ["dlq", "list", "--service", "identity"])
    assert result.exit_code == 0
    assert f"{dl_id}\t" in result.output and "enrollment.enrollments.v1[2]@17" in result.output
    assert "boom" in result.output
    result = runner.invoke(csc, ["dlq", "replay", str(dl_id), "--service", "identity"])
    assert result.exit_code == 1
    assert "cannot be read" in result.output
    result = runner.invoke(csc, ["dlq", "replay", "999999", "--service", "identity"])
    assert result.exit_code == 1 and "no dead letter with id 999999" in result.output
    result = runner.invoke(csc, ["dlq", "list", "--service", "nope"])
    assert result.exit_code == 1 and "unknown service" in result.output
