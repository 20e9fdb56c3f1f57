"""Wiring of the groups service: `uvicorn groups.app:create_app --factory`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from groups.api import router
from groups.handlers import SUBSCRIPTIONS
from groups.settings import GroupsSettings
from shared.servicekit.runtime import ServiceSpec, build_app

SPEC = ServiceSpec(
    name="groups",
    settings_cls=GroupsSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    routers=(router,),
    title="Customer Support Center: groups",
)


def create_app(settings: GroupsSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings)
