"""Settings of the sync-iwds service (environment variables prefixed SYNC_IWDS_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.servicekit.settings import ServiceSettings


class SyncIwdsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SYNC_IWDS_", extra="ignore")

    service_name: ClassVar[str] = "sync-iwds"
    default_port: ClassVar[int] = 8104

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/sync_iwds")
