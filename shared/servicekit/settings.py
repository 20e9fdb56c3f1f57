"""Typed settings shared by every service (pydantic-settings).

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix``
(``IDENTITY_``, ``GROUPS_``...). Settings common to the whole system are read
from ``CSC_*`` variables whatever the prefix. Outside ``CSC_ENV=dev`` a
service refuses to start while any secret is empty or still has its default.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    AliasPath,
    Field,
    SecretBytes,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.servicekit.clock import DEFAULT_PORTAL_TIMEZONE


def _common(name: str) -> Any:
    """Field alias for a system-wide variable ``CSC_<NAME>``."""
    return AliasChoices(f"CSC_{name.upper()}")


class InsecureSettingsError(RuntimeError):
    """A secret is empty or left at its default outside development.

    Deliberately not a ``ValueError``: pydantic would wrap one in a
    ``ValidationError`` whose text repeats every input value, secrets included.
    """


def _env_name(name: str, field: FieldInfo, prefix: str) -> str:
    """The environment variable a field is read from (its alias wins over the prefix)."""
    alias = field.validation_alias or field.alias
    if isinstance(alias, AliasChoices):
        alias = next((c for c in alias.choices if isinstance(c, str)), None)
    if isinstance(alias, str):
        return alias.upper()
    if isinstance(alias, AliasPath) and isinstance(alias.path[0], str):
        return alias.path[0].upper()
    return f"{prefix}{name}".upper()


def _default_of(field: FieldInfo) -> object:
    if field.default_factory is None:
        return field.default
    if field.default_factory_takes_validated_data:
        return None
    return field.get_default(call_default_factory=True)


def _secret_text(value: object) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode("utf-8", "replace")
    return None


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore")

    service_name: ClassVar[str] = "service"
    default_port: ClassVar[int] = 8000

    env: Literal["dev", "test", "prod"] = Field("prod", validation_alias=_common("env"))
    log_level: str = Field("INFO", validation_alias=_common("log_level"))
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", validation_alias=_common("log_format")
    )
    # a request body larger than this is refused with 413 (feed uploads set their own)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # every business date of every service is taken in this zone (shared/servicekit/clock.py)
    portal_timezone: str = Field(
        DEFAULT_PORTAL_TIMEZONE, validation_alias=_common("portal_timezone")
    )

    host: str = "127.0.0.1"
    port: int = 0

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/csc")
    database_pool_min: int = 2
    database_pool_max: int = 10
    # how long a request waits for a pooled connection before a 503 (None: no limit)
    database_acquire_timeout_seconds: float | None = Field(None, gt=0)
    # the outbox relay and the consumers' own pool (0: they share the requests' pool)
    database_background_pool_max: int = Field(0, ge=0)

    kafka_bootstrap: str = Field("127.0.0.1:9092", validation_alias=_common("kafka_bootstrap"))
    kafka_partitions: int = Field(4, ge=1, validation_alias=_common("kafka_partitions"))
    kafka_replication: int = Field(1, ge=1, validation_alias=_common("kafka_replication"))
    # "assign" reads every partition without a consumer group (fast start, one
    # instance per service); "group" shares partitions between instances.
    kafka_consumer_mode: Literal["assign", "group"] = Field(
        "group", validation_alias=_common("kafka_consumer_mode")
    )
    kafka_fetch_max_wait_ms: int = Field(100, validation_alias=_common("kafka_fetch_max_wait_ms"))
    # the producers' codec ("none" to send uncompressed); see bench/compression.py
    kafka_compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = Field(
        "zstd", validation_alias=_common("kafka_compression")
    )
    broker_check_interval: float = Field(
        1.0, gt=0, validation_alias=_common("broker_check_interval")
    )

    outbox_batch_size: int = Field(500, ge=1)
    outbox_lease_seconds: float = Field(30.0, gt=0)
    outbox_poll_interval: float = Field(1.0, gt=0)
    outbox_retention_hours: float = Field(168.0, gt=0)

    consumer_max_attempts: int = Field(5, ge=1)
    consumer_retry_base_seconds: float = Field(0.2, gt=0)
    consumer_unassigned_grace_seconds: float = Field(60.0, gt=0)

    jwks_url: str = Field(
        "http://127.0.0.1:8101/.well-known/jwks.json", validation_alias=_common("jwks_url")
    )
    jwt_issuer: str = Field("csc-identity", validation_alias=_common("jwt_issuer"))
    # a service is its own token audience (its name): there is no audience setting
    # how often the revoked sessions are reloaded from the table besides LISTEN/NOTIFY
    revocation_reload_seconds: float = Field(
        5.0, gt=0, validation_alias=_common("revocation_reload_seconds"))
    # where a service narrows a caller's token for another service (RFC 8693 token
    # exchange); empty: identity's /v1/auth/token beside the JWKS
    token_url: str = Field("", validation_alias=_common("token_url"))
    jwks_cache_seconds: float = Field(300.0, validation_alias=_common("jwks_cache_seconds"))

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServiceSettings:
        if self.env == "dev":
            return self
        problems = []
        prefix = self.model_config.get("env_prefix") or ""
        for name, field in type(self).model_fields.items():
            value = _secret_text(getattr(self, name))
            if value is None:
                continue
            var = _env_name(name, field, prefix)
            default = _secret_text(_default_of(field))
            if not value.strip():
                problems.append(f"{var} is empty")
            elif default is not None and default == value:
                problems.append(f"{var} still has its default value")
        if problems:
            raise InsecureSettingsError(
                f"refusing to start with CSC_ENV={self.env}: " + "; ".join(problems)
            )
        return self

    @field_validator("portal_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def token_endpoint(self) -> str:
        """identity's token endpoint: ``token_url``, else beside the JWKS URL."""
        if self.token_url:
            return self.token_url
        from urllib.parse import urlsplit
        parts = urlsplit(self.jwks_url)
        return f"{parts.scheme}://{parts.netloc}/v1/auth/token"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.portal_timezone)

    @property
    def bind_port(self) -> int:
        return self.port or self.default_port
