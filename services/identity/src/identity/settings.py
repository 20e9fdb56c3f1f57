"""Settings of the identity service (environment variables prefixed IDENTITY_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from identity.domain.limits import parse_networks
from shared.servicekit.seal import seal_keys_spec
from shared.servicekit.settings import ServiceSettings

# Development-only defaults; outside CSC_ENV=dev the service refuses them.
_DEV_KEY = "ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="  # 32 bytes, base64


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    service_name: ClassVar[str] = "identity"
    default_port: ClassVar[int] = 8101

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/identity")

    # SSN encryption: "kid:BASE64,kid:BASE64" (AES-256 keys) and the active kid.
    ssn_keys: SecretStr = SecretStr(f"dev1:{_DEV_KEY}")
    ssn_active_key: str = "dev1"
    ssn_hmac_key: SecretStr = SecretStr(_DEV_KEY)
    # Seals signing keys and stored idempotent answers at rest (AES-256, base64).
    data_key: SecretStr = SecretStr(_DEV_KEY)

    access_token_minutes: int = Field(15, ge=1, le=60)
    # the services a signed-in person's token is for (its ``aud``), space- or
    # comma-separated; each service accepts only tokens naming it
    token_audiences: str = (
        "identity enrollment groups notify readiness sync-iwds gateway")  # noqa: S105
    # a token narrowed for one service (token exchange) lives at most this long
    exchange_token_minutes: int = Field(5, ge=1, le=60)
    refresh_token_days: int = Field(14, ge=1)
    temporary_password_days: int = Field(7, ge=1)
    recovery_link_minutes: int = Field(30, ge=5)
    recovery_link_url: str = "http://127.0.0.1:8100/recover"
    # Seals the recovery link in PasswordRecoveryRequested for notify only: "kid:BASE64"
    # AES-256 keys, comma-separated, the first seals (notify holds the same list as
    # NOTIFY_SEAL_KEYS). See shared/servicekit/seal.py and docs/recovery-seal.md.
    # (unset: the development key, refused with CSC_ENV=prod)
    notify_seal_keys: SecretStr | None = None

    @model_validator(mode="after")
    def _seal_keys_set_in_prod(self) -> IdentitySettings:
        seal_keys_spec(self.notify_seal_keys, self.env, "IDENTITY_NOTIFY_SEAL_KEYS")
        return self

    @property
    def notify_seal_keys_spec(self) -> str:
        return seal_keys_spec(self.notify_seal_keys, self.env, "IDENTITY_NOTIFY_SEAL_KEYS")

    argon2_memory_kib: int = Field(19_456, ge=19_456)
    argon2_time_cost: int = Field(2, ge=2)
    argon2_parallelism: int = Field(1, ge=1)
    password_hash_threads: int = Field(2, ge=1)

    signin_max_failures: int = Field(5, ge=1)
    signin_lock_minutes: int = Field(15, ge=1)

    # Person matching: a candidate's probability of being the same person at or
    # above `match_strong` is "strong", at or above `match_possible` "possible".
    match_strong: float = Field(0.95, gt=0, le=1)
    match_possible: float = Field(0.6, gt=0, le=1)
    # ... and at or above `match_weak` "weak": shown to staff looking for a person
    # (the review list), never acted on and not queued as a duplicate.
    match_weak: float = Field(0.02, gt=0, le=1)

    # Rate limits (fixed windows counted in PostgreSQL, shared by every instance).
    # Person matching, per staff member (POST /v1/matches, and enrollment's Add
    # Customer match step, which calls it with the staff member's own token):
    match_rate_per_minute: int = Field(30, ge=1)
    match_rate_per_day: int = Field(300, ge=1)
    # ... per machine client with scope identity:match (sync-iwds linking a night's
    # IWDS records), counted apart from any staff member:
    match_client_rate_per_minute: int = Field(600, ge=1)
    match_client_rate_per_day: int = Field(100_000, ge=1)
    # The public doors, per calling address: sign-in (password and client
    # credentials grants; refreshes and token exchanges are not), self-registration, and
    # password recovery (asking for a link and completing it). The gateway keeps
    # its own, tighter, per-visitor limits in front of these; behind it every
    # visitor shares the gateway's address unless it is a trusted proxy.
    signin_rate_per_minute: int = Field(120, ge=1)
    registration_rate_per_minute: int = Field(60, ge=1)
    registration_rate_per_day: int = Field(2_000, ge=1)
    recovery_rate_per_minute: int = Field(60, ge=1)
    # Addresses (or networks) whose X-Forwarded-For names the client: comma-separated,
    # e.g. "10.0.0.5,172.18.0.0/16". Empty: the peer address is the client.
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value
