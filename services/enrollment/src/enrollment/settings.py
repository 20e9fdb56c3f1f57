"""Settings of the enrollment service (environment variables prefixed ENROLLMENT_)."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.servicekit.settings import ServiceSettings


class EnrollmentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ENROLLMENT_", extra="ignore")

    service_name: ClassVar[str] = "enrollment"
    default_port: ClassVar[int] = 8103

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/enrollment")
    # a request waits this long for a pooled connection, then 503; the outbox relay and
    # the consumers have their own small pool (Add Customer waits on identity, a person
    # waits on Add Customer: neither may starve the other)
    database_acquire_timeout_seconds: float | None = Field(5.0, gt=0)
    database_background_pool_max: int = Field(3, ge=0)

    # identity's base URL for the synchronous calls of Add Customer (a person is
    # waiting); empty: the scheme and host of CSC_JWKS_URL.
    identity_url: str = ""
    identity_timeout_seconds: float = Field(2.5, gt=0, le=30)
    identity_max_connections: int = Field(50, ge=1)

    # the old name of the kit's CSC_PORTAL_TIMEZONE, still read when set
    timezone: str | None = None
    # printed on the customer's hand-out
    signin_url: str = "http://127.0.0.1:8100/signin"
    offender_search_url: str = "https://www2.illinois.gov/idoc/Offender/Pages/InmateSearch.aspx"

    @property
    def business_zone(self) -> ZoneInfo:
        """The zone of "today" (CSC_PORTAL_TIMEZONE; ENROLLMENT_TIMEZONE if still set)."""
        if self.timezone:
            try:
                return ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        return self.zone

    @property
    def identity_base_url(self) -> str:
        if self.identity_url:
            return self.identity_url.rstrip("/")
        parts = urlsplit(self.jwks_url)
        return urlunsplit((parts.scheme, parts.netloc, "", "", ""))
