"""What sync-iwds' use cases need, built once from settings."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import date

import asyncpg
import httpx

from shared.servicekit.clock import Clock, SystemClock
from shared.servicekit.outbox import Outbox
from sync_iwds.settings import SyncIwdsSettings


@dataclass(frozen=True)
class Deps:
    clock: Clock
    outbox: Outbox
    settings: SyncIwdsSettings
    # set when a run is staged: the service's applier picks it up
    wake_applier: asyncio.Event = field(default_factory=asyncio.Event)
    # identity's matcher; None: no linking (records stay counted as unlinked)
    identity: IdentityClient | None = None


async def build_deps(settings: SyncIwdsSettings, pool: asyncpg.Pool | None = None) -> Deps:
    identity = None
    if settings.identity_client_id and settings.identity_client_secret is not None:
        identity = IdentityClient(
            settings.identity_base_url, settings.identity_client_id,
            settings.identity_client_secret.get_secret_value(),
            timeout=settings.identity_timeout_seconds)
    return Deps(clock=SystemClock(settings.zone), outbox=Outbox("sync-iwds"), settings=settings,
                identity=identity)


async def stop_deps(deps: Deps) -> None:
    if deps.identity is not None:
        await deps.identity.close()


class IdentityUnavailable(Exception):
    """identity cannot be asked now (unreachable, refused our credential...)."""


class IdentityClient:
    """identity's matcher over HTTP, with a client credential (scope identity:match)."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, *,
                 timeout: float, http: httpx.AsyncClient | None = None) -> None:
        self.base_url, self.client_id, self.secret = base_url.rstrip("/"), client_id, client_secret
        self.http = http or httpx.AsyncClient(timeout=timeout)
        self._token: str | None = None
        self._expires = 0.0

    async def _bearer(self) -> str:
        if self._token is None or time.monotonic() > self._expires:
            try:
                resp = await self.http.post(f"{self.base_url}/v1/auth/token", data={
                    "grant_type": "client_credentials", "client_id": self.client_id,
                    "client_secret": self.secret})
            except httpx.HTTPError as exc:
                raise IdentityUnavailable(type(exc).__name__) from exc
            if resp.status_code != 200:
                raise IdentityUnavailable(f"token refused ({resp.status_code})")
            body = resp.json()
            self._token = str(body["access_token"])
            self._expires = time.monotonic() + max(int(body.get("expires_in", 60)) - 30, 5)
        return self._token

    async def strong_match(self, first_name: str, last_name: str, date_of_birth: date
                           ) -> uuid.UUID | None:
        """The account when identity finds exactly one strong candidate, else None."""
        token = await self._bearer()
        try:
            resp = await self.http.post(
                f"{self.base_url}/v1/matches", headers={"Authorization": f"Bearer {token}"},
                json={"first_name": first_name, "last_name": last_name,
                      "date_of_birth": date_of_birth.isoformat()})
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(type(exc).__name__) from exc
        if resp.status_code == 401:
            self._token = None
        if resp.status_code != 200:
            raise IdentityUnavailable(f"matches answered {resp.status_code}")
        strong = [c for c in resp.json().get("candidates", []) if c.get("band") == "strong"]
        return uuid.UUID(strong[0]["account_id"]) if len(strong) == 1 else None

    async def close(self) -> None:
        await self.http.aclose()
