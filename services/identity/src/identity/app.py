"""Wiring of the identity service: `uvicorn identity.app:create_app --factory`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from identity.handlers import SUBSCRIPTIONS
from identity.settings import IdentitySettings
from shared.servicekit.runtime import ServiceSpec, build_app

SPEC = ServiceSpec(
    name="identity",
    settings_cls=IdentitySettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    title="Customer Support Center: identity",
)


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    return build_app(SPEC, settings)
