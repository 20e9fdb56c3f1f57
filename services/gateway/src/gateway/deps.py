"""What the gateway's routes and use cases share: one pooled HTTP client per service."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from gateway.domain import Sealer
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream as LeanUpstream
from shared.servicekit.clock import Clock, SystemClock
from shared.servicekit.outbox import Outbox

# below uvicorn's 5 s keep-alive: a pooled connection is dropped here before the
# service closes it under a request
KEEPALIVE_SECONDS = 4.0


@dataclass(frozen=True)
class Upstream:
    """A service called straight through its pooled transport: no cookie jar (a
    service's Set-Cookie must never be kept and sent on someone else's behalf), no
    redirects, auth or event hooks, and the URL parsed once rather than merged."""

    base: str  # the service's base URL, without a trailing slash
    transport: httpx.AsyncHTTPTransport
    timeout: dict[str, float | None]


@dataclass(frozen=True)
class Deps:
    clock: Clock
    outbox: Outbox
    settings: GatewaySettings
    sealer: Sealer
    # service name -> a keep-alive client on its base URL
    upstreams: dict[str, httpx.AsyncClient]
    # service name -> the same keep-alive pool, called directly (the proxy, `call`)
    direct: dict[str, Upstream] = field(default_factory=dict)
    # service name -> its lean keep-alive pool (the proxy, and the pages' calls)
    lean: dict[str, LeanUpstream] = field(default_factory=dict)
    # reference lists (institutions, counties, offenses): key -> (fetched at, items)
    cache: dict[str, tuple[float, Any]] = field(default_factory=dict)


def _timeout(s: GatewaySettings) -> httpx.Timeout:
    return httpx.Timeout(s.read_timeout_seconds, connect=s.connect_timeout_seconds)


def upstream(base_url: str, s: GatewaySettings) -> Upstream:
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(
        max_connections=s.max_connections, max_keepalive_connections=s.max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS))
    return Upstream(base_url.rstrip("/"), transport, _timeout(s).as_dict())


def upstream_client(up: Upstream, s: GatewaySettings) -> httpx.AsyncClient:
    """An httpx client over the same pool, for code that wants one."""
    return httpx.AsyncClient(base_url=up.base, timeout=_timeout(s), transport=up.transport,
                             follow_redirects=False)


def sealer_for(s: GatewaySettings) -> Sealer:
    key = s.data_key.get_secret_value().strip()
    if not key:
        # only in dev (settings refuse an empty key elsewhere): sessions end at restart
        return Sealer(os.urandom(32))
    return Sealer(base64.b64decode(key, validate=True))


async def build_deps(s: GatewaySettings, pool: asyncpg.Pool) -> Deps:
    direct = {name: upstream(url, s) for name, url in s.upstreams.items()}
    return Deps(
        clock=SystemClock(s.zone), outbox=Outbox("gateway"), settings=s,
        sealer=sealer_for(s),
        upstreams={name: upstream_client(up, s) for name, up in direct.items()},
        direct=direct,
        lean={name: LeanUpstream(url, connect_timeout=s.connect_timeout_seconds,
                                 read_timeout=s.read_timeout_seconds,
                                 max_connections=s.max_connections)
              for name, url in s.upstreams.items()},
    )


async def stop_deps(deps: Deps) -> None:
    for client in deps.upstreams.values():
        await client.aclose()  # closes the shared transport too
    for up in deps.lean.values():
        await up.close()
