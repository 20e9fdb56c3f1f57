"""Wiring of the gateway: `uvicorn gateway.app:create_app --factory` (port 8100)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from gateway import service
from gateway.api import (
    admin,
    console,
    customer_groups,
    customer_pages,
    group_pages,
    iwds_pages,
    proxy,
    session_pages,
)
from gateway.api.web import STATIC, Redirect, redirect, render
from gateway.deps import build_deps, stop_deps
from gateway.domain import SESSION_COOKIE, PageSession
from gateway.handlers import SUBSCRIPTIONS
from gateway.settings import GatewaySettings
from shared.servicekit.runtime import Runtime, ServiceSpec, build_app

SPEC = ServiceSpec(
    name="gateway",
    settings_cls=GatewaySettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    routers=(session_pages.router, console.router, admin.router,
             customer_pages.router, customer_groups.router, iwds_pages.router,
             group_pages.router),
    title="Customer Support Center: gateway",
    build_deps=build_deps,
    stop_deps=stop_deps,
)


async def on_start(runtime: Runtime) -> None:
    assert runtime.pool is not None
    runtime.spawn(service.forget_old(runtime.pool, runtime.deps), "forget-old-sessions")


async def _signed_in(request: Request) -> PageSession | None:
    """Who is signed in, for an error page (every page says so); None when that cannot
    be told either."""
    runtime = request.app.state.runtime
    try:
        return await service.load_session(runtime.pool, runtime.deps,
                                          request.cookies.get(SESSION_COOKIE))
    except (service.Unavailable, service.ApiError, asyncpg.PostgresError, OSError):
        return None


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    app = build_app(SPEC, settings, on_start=on_start)
    # the proxy first: a forwarded call is matched before any page route is tried
    app.router.routes.insert(0, proxy.route)
    if STATIC.is_dir():  # `make assets` fills it
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(Redirect)
    async def on_redirect(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Redirect)
        return redirect(exc.url)

    @app.exception_handler(service.Unavailable)
    async def on_unavailable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, service.Unavailable)
        return render(request, "error.html", session=await _signed_in(request),
                      deps=request.app.state.runtime.deps, status=503,
                      heading="Something is not working right now",
                      message=f"The {exc.service} service is unavailable. Try again in a"
                              " few minutes.")

    @app.exception_handler(service.ApiError)
    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, service.ApiError)
        if exc.status == 401:
            return redirect("/signin")
        return render(request, "error.html", session=await _signed_in(request),
                      deps=request.app.state.runtime.deps, status=exc.status,
                      heading="That did not work", message=exc.detail)

    return app
