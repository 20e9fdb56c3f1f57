"""Settings of the sync-iwds service (environment variables prefixed SYNC_IWDS_)."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.servicekit.settings import ServiceSettings


class SyncIwdsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SYNC_IWDS_", extra="ignore")

    service_name: ClassVar[str] = "sync-iwds"
    default_port: ClassVar[int] = 8104

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/sync_iwds")

    # a full extract that would remove more than this share of the records held waits
    # for an operator (csc iwds confirm RUN_ID, or POST /v1/runs/{id}/confirm)
    hold_share: float = Field(0.05, ge=0, le=1)
    # rows per COPY into staging, and events per COPY into the outbox
    stage_batch_rows: int = Field(20_000, ge=100)
    event_batch: int = Field(5_000, ge=100)

    # linking records without a worknet_account_id through identity's matcher
    # (POST /v1/matches with a client credential of scope identity:match); no
    # client id: no linking, the records stay listed as unlinked
    identity_url: str = ""
    identity_client_id: str = ""
    identity_client_secret: SecretStr | None = None
    identity_timeout_seconds: float = Field(3.0, gt=0, le=30)
    link_batch: int = Field(200, ge=1, le=5000)
    link_retry_hours: float = Field(24.0, gt=0)
    link_interval_seconds: float = Field(30.0, gt=0)

    @property
    def identity_base_url(self) -> str:
        if self.identity_url:
            return self.identity_url.rstrip("/")
        parts = urlsplit(self.jwks_url)
        return urlunsplit((parts.scheme, parts.netloc, "", "", ""))
