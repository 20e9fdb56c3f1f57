"""readiness in-process on a fresh database and the session's broker, with a stand-in for
groups served over real HTTP on a free port (the three pinned routes readiness calls:
who reaches a customer, who reaches a group, and the group message route).

Tokens are minted with the test signing keys: staff and customer tokens as identity
issues them, and client-credential tokens (``kind: "client"``, ``scope``) for the feed.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from readiness.app import create_app
from readiness.settings import ReadinessSettings
from shared.schemas.base import Event
from shared.schemas.envelope import Envelope
from shared.servicekit.auth import JwksVerifier
from shared.servicekit.broker import KafkaConfig, new_producer
from shared.servicekit.db import create_pool
from shared.servicekit.topics import broker_topic
from tests.support.keys import TestSigner, add_token_exchange
from tests.support.kit import wait_until
from tests.support.stack import Servers

STAND_IN_GROUP = uuid.UUID("00000000-0000-4000-8000-000000000007")


@dataclass
class FakeGroups:
    """What groups would answer: who reaches which customers and groups; messages sent."""

    customers: dict[str, set[uuid.UUID]] = field(default_factory=dict)  # staff sub -> ids
    groups: dict[str, set[uuid.UUID]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    failing: bool = False

    def app(self) -> FastAPI:
        app = FastAPI()

        def caller(request: Request) -> str:
            token = request.headers.get("authorization", "").partition(" ")[2]
            return str(jwt.decode(token, options={"verify_signature": False})["sub"])

        @app.get("/v1/access/customers/{customer_id}")
        async def access(customer_id: uuid.UUID, request: Request) -> Any:
            self.calls.append(f"access {customer_id}")
            if self.failing:
                return JSONResponse({"detail": "down"}, status_code=500)
            if customer_id in self.customers.get(caller(request), set()):
                # as groups answers: 200 with the paths that give access (never empty)
                return {"customer_id": str(customer_id), "via": [
                    {"group_id": str(STAND_IN_GROUP), "kind": "lwia", "name": "LWIA 07",
                     "reason": "IWDS access: LWIA 07"}]}
            return JSONResponse({"title": "Not found"}, status_code=404)

        @app.get("/v1/groups/{group_id}")
        async def group(group_id: uuid.UUID, request: Request) -> Any:
            if self.failing:
                return JSONResponse({"detail": "down"}, status_code=500)
            if group_id in self.groups.get(caller(request), set()):
                return {"id": str(group_id)}
            return JSONResponse({"title": "Not found"}, status_code=404)

        @app.post("/v1/groups/{group_id}/messages")
        async def message(group_id: uuid.UUID, request: Request) -> Any:
            if group_id not in self.groups.get(caller(request), set()):
                return JSONResponse({"title": "Not found"}, status_code=404)
            body = await request.json()
            message_id = str(uuid.uuid4())
            self.messages.append({"group_id": group_id, "message_id": message_id,
                                  "by": caller(request),
                                  "request_id": request.headers.get("x-request-id"), **body})
            return JSONResponse({"message_id": message_id,
                                 "recipients": len(body.get("customer_ids") or [])},
                                status_code=202)

        return app


class HttpServer:
    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None,
                                                    access_log=False))
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.server.should_exit = True
            await asyncio.wait_for(self.task, 15)
        self.sock.close()


@dataclass
class Readiness:
    signer: TestSigner
    groups: FakeGroups
    groups_server: HttpServer
    client: httpx.AsyncClient
    pool: Any
    producer: AIOKafkaProducer
    app: FastAPI

    def staff(self, *roles: str) -> tuple[uuid.UUID, dict[str, str]]:
        sid = uuid.uuid4()
        return sid, self.bearer(self.signer.token(str(sid), kind="staff", roles=list(roles)))

    def customer(self, cid: uuid.UUID) -> dict[str, str]:
        return self.bearer(self.signer.token(str(cid), kind="customer"))

    def feed_client(self, scope: str = "readiness:feed") -> dict[str, str]:
        return self.bearer(self.signer.token("portal-assessments", kind="client", roles=[],
                                             scope=scope))

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def publish(self, event: Event, producer: str = "groups") -> None:
        env = Envelope.wrap(event, producer=producer)
        await self.producer.send_and_wait(broker_topic(event.TOPIC), env.to_bytes(),
                                          key=env.subject.encode())

    async def post_feed(self, lines: list[Any], headers: dict[str, str] | None = None
                        ) -> httpx.Response:
        import json

        body = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
        return await self.client.post("/v1/feeds/readiness", content=body.encode(),
                                      headers={**(headers or self.feed_client()),
                                               "Content-Type": "application/x-ndjson"})

    async def wait_for(self, sql: str, *args: Any, timeout: float = 20) -> None:
        async def ready() -> bool:
            return bool(await self.pool.fetchval(sql, *args))
        await wait_until(ready, timeout=timeout, interval=0.05)


@pytest_asyncio.fixture
async def readiness(servers: Servers, database: str, monkeypatch: pytest.MonkeyPatch
                    ) -> AsyncIterator[Readiness]:
    groups = FakeGroups()
    signer = TestSigner()
    groups_app = groups.app()
    add_token_exchange(groups_app, signer)  # readiness narrows its caller's token here
    server = HttpServer(groups_app)
    await server.start()
    env = {
        "CSC_ENV": "test",
        "CSC_KAFKA_BOOTSTRAP": servers.bootstrap,
        "CSC_KAFKA_CONSUMER_MODE": "assign",
        "CSC_BROKER_CHECK_INTERVAL": "0.5",
        "READINESS_DATABASE_URL": database,
        "READINESS_GROUPS_URL": server.url,
        "CSC_TOKEN_URL": f"{server.url}/v1/auth/token",
        "READINESS_OUTBOX_POLL_INTERVAL": "0.2",
        "READINESS_FEED_BATCH_RECORDS": "3",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    verifier = JwksVerifier.from_jwks(signer.jwks(), issuer=signer.issuer,
                                      audience="readiness")
    app = create_app(ReadinessSettings(), verifier=verifier)
    pool = await create_pool(database, min_size=1, max_size=4)
    producer = new_producer(KafkaConfig(servers.bootstrap, client_id="test-portal"))
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://readiness") as client:
            runtime = app.state.runtime

            async def watching() -> bool:
                return runtime.watch.epoch is not None
            await wait_until(watching, timeout=20, interval=0.05)
            await producer.start()
            yield Readiness(signer, groups, server, client, pool, producer, app)
    finally:
        await producer.stop()
        await server.stop()
        await pool.close()
