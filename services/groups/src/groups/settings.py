"""Settings of the groups service (environment variables prefixed GROUPS_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.servicekit.settings import ServiceSettings


class GroupsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GROUPS_", extra="ignore")

    service_name: ClassVar[str] = "groups"
    default_port: ClassVar[int] = 8102

    database_url: SecretStr = SecretStr("postgresql://csc:csc@127.0.0.1:5432/groups")

    # an invitation not answered within this many days expires
    invitation_days: int = Field(14, ge=1, le=365)
    # the portal's join page; a group's address is <join_url>/<join_code>
    join_url: str = "http://127.0.0.1:8100/join"
    # recipient ids per GroupMessageRequested (5,000 ids is about 190 kB of JSON)
    message_chunk_size: int = Field(5000, ge=1, le=20_000)
    # how often the message task looks for chunks not yet sent (it is also woken)
    message_poll_interval: float = Field(1.0, gt=0)
    page_size: int = Field(50, ge=1, le=500)
