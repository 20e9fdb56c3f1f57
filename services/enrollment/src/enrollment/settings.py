"""Settings of the enrollment service (environment variables prefixed ENROLLMENT_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.servicekit.settings import ServiceSettings


class EnrollmentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ENROLLMENT_", extra="ignore")

    service_name: ClassVar[str] = "enrollment"
    default_port: ClassVar[int] = 8103

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/enrollment")
