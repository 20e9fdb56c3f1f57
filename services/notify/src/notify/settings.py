"""Settings of the notify service (environment variables prefixed NOTIFY_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.servicekit.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    service_name: ClassVar[str] = "notify"
    default_port: ClassVar[int] = 8105

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/notify")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
