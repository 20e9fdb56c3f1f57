"""Settings of the groups service (environment variables prefixed GROUPS_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.servicekit.settings import ServiceSettings


class GroupsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GROUPS_", extra="ignore")

    service_name: ClassVar[str] = "groups"
    default_port: ClassVar[int] = 8102

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/groups")
