"""Wiring of the sync-iwds service: `uvicorn sync_iwds.app:create_app --factory`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from shared.servicekit.runtime import ServiceSpec, build_app
from sync_iwds.api import router
from sync_iwds.handlers import SUBSCRIPTIONS
from sync_iwds.settings import SyncIwdsSettings

SPEC = ServiceSpec(
    name="sync-iwds",
    settings_cls=SyncIwdsSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    routers=(router,),
    title="Customer Support Center: sync-iwds",
)


def create_app(settings: SyncIwdsSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings)
