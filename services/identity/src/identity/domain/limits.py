"""identity's rate limits: what is counted, per whom, and how often it may happen.

Pure rules; the counting itself is the kit's PostgreSQL limiter
(``shared.servicekit.limits.hit``), called from ``identity.service.limits``.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from shared.servicekit.limits import Rate

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What is limited (the limiter's scope); one count per caller in each.
MATCH_SCOPE = "identity:match"
SIGNIN_SCOPE = "identity:signin"
REGISTRATION_SCOPE = "identity:registration"
RECOVERY_SCOPE = "identity:recovery"
PublicDoor = Literal["signin", "registration", "recovery"]


@dataclass(frozen=True)
class MatchCaller:
    """Who asks the matcher: a staff member (their own token, also when enrollment
    asks on their behalf) or a machine client with scope identity:match."""

    id: uuid.UUID
    kind: Literal["staff", "client"]

    @property
    def key(self) -> str:
        """The limiter's key: staff and clients are counted apart."""
        return f"{self.kind}:{self.id}"


def _default_rates() -> dict[str, tuple[Rate, ...]]:
    return {
        "match_staff": (Rate.per_minute(30), Rate.per_day(300)),
        "match_client": (Rate.per_minute(600), Rate.per_day(100_000)),
        "signin": (Rate.per_minute(120),),
        "registration": (Rate.per_minute(60), Rate.per_day(2_000)),
        "recovery": (Rate.per_minute(60),),
    }


@dataclass(frozen=True)
class Limits:
    """The rates of each limited thing (see the settings of the same names)."""

    rates: dict[str, tuple[Rate, ...]] = field(default_factory=_default_rates)
    trusted_proxies: tuple[IpNetwork, ...] = ()

    def for_match(self, caller: MatchCaller) -> tuple[Rate, ...]:
        return self.rates["match_staff" if caller.kind == "staff" else "match_client"]

    def for_door(self, door: PublicDoor) -> tuple[Rate, ...]:
        return self.rates[door]

    @classmethod
    def of(
        cls, *, match_per_minute: int, match_per_day: int, client_match_per_minute: int,
        client_match_per_day: int, signin_per_minute: int, registration_per_minute: int,
        registration_per_day: int, recovery_per_minute: int, trusted_proxies: str = "",
    ) -> Limits:
        return cls(
            rates={
                "match_staff": (Rate.per_minute(match_per_minute), Rate.per_day(match_per_day)),
                "match_client": (Rate.per_minute(client_match_per_minute),
                                 Rate.per_day(client_match_per_day)),
                "signin": (Rate.per_minute(signin_per_minute),),
                "registration": (Rate.per_minute(registration_per_minute),
                                 Rate.per_day(registration_per_day)),
                "recovery": (Rate.per_minute(recovery_per_minute),),
            },
            trusted_proxies=parse_networks(trusted_proxies),
        )


DOOR_SCOPES: dict[PublicDoor, str] = {
    "signin": SIGNIN_SCOPE, "registration": REGISTRATION_SCOPE, "recovery": RECOVERY_SCOPE,
}


def parse_networks(text: str) -> tuple[IpNetwork, ...]:
    """``"10.0.0.5, 172.18.0.0/16"`` -> networks; ValueError naming a bad entry."""
    out: list[IpNetwork] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an address or network") from None
    return tuple(out)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IpNetwork]
) -> str:
    """The address a public door counts: the peer's, or, when the peer is a trusted
    proxy, the nearest untrusted address its ``X-Forwarded-For`` names."""
    address = peer or "unknown"
    if not forwarded_for or not _is_trusted(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a forged or broken header: count the proxy itself
        if not _is_trusted(hop, trusted):
            return hop
        address = hop
    return address


def _is_trusted(address: str, trusted: Sequence[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)
