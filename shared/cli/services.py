"""The services the operator commands know about, loaded on demand."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported with the service, not with every `csc` command
    from shared.servicekit.runtime import ServiceSpec


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    package: str
    env_prefix: str
    port: int
    database: str

    def spec(self) -> ServiceSpec:
        spec: ServiceSpec = importlib.import_module(f"{self.package}.app").SPEC
        return spec


SERVICES: dict[str, ServiceInfo] = {
    s.name: s
    for s in (
        ServiceInfo("gateway", "gateway", "GATEWAY_", 8100, "gateway"),
        ServiceInfo("identity", "identity", "IDENTITY_", 8101, "identity"),
        ServiceInfo("groups", "groups", "GROUPS_", 8102, "groups"),
        ServiceInfo("enrollment", "enrollment", "ENROLLMENT_", 8103, "enrollment"),
        ServiceInfo("sync-iwds", "sync_iwds", "SYNC_IWDS_", 8104, "sync_iwds"),
        ServiceInfo("notify", "notify", "NOTIFY_", 8105, "notify"),
        ServiceInfo("readiness", "readiness", "READINESS_", 8106, "readiness"),
    )
}
