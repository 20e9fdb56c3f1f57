"""Wiring of the enrollment service: `uvicorn enrollment.app:create_app --factory`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from enrollment.handlers import SUBSCRIPTIONS
from enrollment.settings import EnrollmentSettings
from shared.servicekit.runtime import ServiceSpec, build_app

SPEC = ServiceSpec(
    name="enrollment",
    settings_cls=EnrollmentSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    title="Customer Support Center: enrollment",
)


def create_app(settings: EnrollmentSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings)
