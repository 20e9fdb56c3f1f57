"""Settings of the readiness service (environment variables prefixed READINESS_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.servicekit.settings import ServiceSettings


class ReadinessSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="READINESS_", extra="ignore")

    service_name: ClassVar[str] = "readiness"
    default_port: ClassVar[int] = 8106

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/readiness")

    # groups answers who reaches whom (GET /v1/access/customers/{id}, GET /v1/groups/{id})
    # and sends the dashboard's reminders (POST /v1/groups/{id}/messages); a person waits
    groups_url: str = "http://127.0.0.1:8102"
    groups_timeout_seconds: float = Field(2.0, gt=0, le=30)
    groups_max_connections: int = Field(50, ge=1)

    # the NDJSON feed: records per set-based write (one transaction each), longest line
    feed_batch_records: int = Field(5000, ge=1, le=100_000)
    feed_max_line_bytes: int = Field(1_000_000, ge=1024)
    # the scope a feed client's token must hold
    feed_scope: str = "readiness:feed"
