"""Settings of the gateway (environment variables prefixed GATEWAY_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.servicekit.settings import ServiceSettings

# the services behind `/api/<name>/...` and their default addresses
DEFAULT_UPSTREAMS = {
    "identity": "http://127.0.0.1:8101",
    "groups": "http://127.0.0.1:8102",
    "enrollment": "http://127.0.0.1:8103",
    "sync-iwds": "http://127.0.0.1:8104",
    "notify": "http://127.0.0.1:8105",
    "readiness": "http://127.0.0.1:8106",
}


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: ClassVar[str] = "gateway"
    default_port: ClassVar[int] = 8100

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/gateway")
    # seals identity's tokens and the Add Customer form between its steps (32 bytes, base64)
    data_key: SecretStr = SecretStr("")

    identity_url: str = DEFAULT_UPSTREAMS["identity"]
    groups_url: str = DEFAULT_UPSTREAMS["groups"]
    enrollment_url: str = DEFAULT_UPSTREAMS["enrollment"]
    sync_iwds_url: str = DEFAULT_UPSTREAMS["sync-iwds"]
    notify_url: str = DEFAULT_UPSTREAMS["notify"]
    readiness_url: str = DEFAULT_UPSTREAMS["readiness"]

    connect_timeout_seconds: float = Field(2.0, gt=0, le=30)
    read_timeout_seconds: float = Field(15.0, gt=0, le=300)
    max_connections: int = Field(100, ge=1)

    # per client address and minute: sign-in, registration, recovery, join-by-passcode
    auth_rate_per_minute: int = Field(20, ge=1)
    # a page session ends after this long without a request
    session_idle_minutes: int = Field(60, ge=1)

    @property
    def upstreams(self) -> dict[str, str]:
        return {
            "identity": self.identity_url, "groups": self.groups_url,
            "enrollment": self.enrollment_url, "sync-iwds": self.sync_iwds_url,
            "notify": self.notify_url, "readiness": self.readiness_url,
        }

    @property
    def secure_cookies(self) -> bool:
        return self.env != "dev"
