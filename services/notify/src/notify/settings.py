"""Settings of the notify service (environment variables prefixed NOTIFY_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.servicekit.seal import seal_keys_spec
from shared.servicekit.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    service_name: ClassVar[str] = "notify"
    default_port: ClassVar[int] = 8105

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/notify")

    # -- SMTP -----------------------------------------------------------------
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False  # upgrade with STARTTLS after connecting
    smtp_use_tls: bool = False  # implicit TLS (port 465)
    smtp_timeout_seconds: float = Field(15.0, gt=0)
    # connections kept open to the server: also the cap on emails in flight at once
    smtp_pool_size: int = Field(8, ge=1, le=100)
    # emails per second at most (0: no limit)
    smtp_rate_per_second: float = Field(0.0, ge=0)

    mail_from: str = "noreply@csc.example"
    portal_name: str = "Customer Support Center"
    portal_url: str = "http://127.0.0.1:8100"
    message_id_domain: str = "notify.csc.example"
    # Opens the recovery link identity seals in PasswordRecoveryRequested: the same
    # "kid:BASE64,..." list as IDENTITY_NOTIFY_SEAL_KEYS (shared/servicekit/seal.py).
    # (unset: the development key, refused with CSC_ENV=prod)
    seal_keys: SecretStr | None = None

    @model_validator(mode="after")
    def _seal_keys_set_in_prod(self) -> NotifySettings:
        seal_keys_spec(self.seal_keys, self.env, "NOTIFY_SEAL_KEYS")
        return self

    @property
    def seal_keys_spec(self) -> str:
        return seal_keys_spec(self.seal_keys, self.env, "NOTIFY_SEAL_KEYS")

    # -- delivery worker --------------------------------------------------------
    worker_enabled: bool = True
    worker_batch_size: int = Field(500, ge=1, le=10_000)
    worker_poll_interval: float = Field(0.2, gt=0)
    worker_lease_seconds: float = Field(120.0, gt=0)
    # results written back this many at a time while a batch is being sent
    worker_flush_size: int = Field(100, ge=1)
    retry_base_seconds: float = Field(30.0, gt=0)
    retry_max_seconds: float = Field(3600.0, gt=0)
    # a temporary failure this many times in a row becomes a permanent one
    max_attempts: int = Field(8, ge=1)
