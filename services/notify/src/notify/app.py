"""Wiring of the notify service: `uvicorn notify.app:create_app --factory`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from notify.api import router
from notify.handlers import SUBSCRIPTIONS
from notify.settings import NotifySettings
from shared.servicekit.runtime import ServiceSpec, build_app

SPEC = ServiceSpec(
    name="notify",
    settings_cls=NotifySettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    routers=(router,),
    title="Customer Support Center: notify",
)


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    return build_app(SPEC, settings)
