"""Every route and dependency of every service is a coroutine function.

FastAPI runs a plain ``def`` endpoint or dependency in a worker thread on every
request: a thread hop and a fight for the GIL that cost the identity service a
good share of its matches per second. This test fails when one slips in.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

SERVICES = ("identity", "groups", "enrollment", "sync_iwds", "notify", "readiness")


def _dependants(d: Dependant) -> Iterator[Dependant]:
    yield d
    for sub in d.dependencies:
        yield from _dependants(sub)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.16x)
            yield from _api_routes(route.original_router.routes)


def _sync_parts(app: Any) -> list[str]:
    found = []
    for route in _api_routes(app.routes):
        for d in _dependants(route.dependant):
            call = d.call
            if call is None or inspect.isclass(call):
                continue  # request models and the like are no calls of ours
            # a function, or an instance whose __call__ is (OAuth2PasswordBearer and the like)
            if not (inspect.iscoroutinefunction(call)
                    or inspect.iscoroutinefunction(type(call).__call__)):
                found.append(f"{route.path}: {getattr(call, '__qualname__', call)}")
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_no_route_or_dependency_runs_in_a_thread(service: str) -> None:
    app = importlib.import_module(f"{service}.app").create_app()
    assert any(r.path == "/healthz" for r in _api_routes(app.routes))
    assert _sync_parts(app) == []


def test_the_check_sees_a_plain_def_dependency() -> None:
    from fastapi import Depends, FastAPI

    def sync_dep() -> int:
        return 1

    app = FastAPI()

    @app.get("/x")
    async def x(n: int = Depends(sync_dep)) -> int:
        return n

    assert _sync_parts(app) == ["/x: test_the_check_sees_a_plain_def_dependency.<locals>.sync_dep"]
