"""What identity's use cases get (clock, outbox, vault, hashing, keys, policies),
built once at start-up from the settings: ``deps.Deps``."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import timedelta
from typing import Any

from identity.domain.limits import Limits
from identity.domain.matching import DEFAULT_THRESHOLDS, Thresholds, thresholds_from
from identity.domain.passwords import LockoutPolicy, Passwords
from identity.domain.ssn import SsnVault
from identity.domain.tokens import KeyRing, TokenSettings
from identity.repository.outbox import OUTBOX
from identity.settings import IdentitySettings
from shared.servicekit.access import GroupsAccess
from shared.servicekit.clock import Clock, SystemClock
from shared.servicekit.outbox import Outbox
from shared.servicekit.seal import Sealer


@dataclass
class Deps:
    """What identity's use cases get, built once at start-up from the settings."""

    clock: Clock
    outbox: Outbox

    vault: SsnVault
    passwords: Passwords
    kek: bytes
    tokens: TokenSettings
    lockout: LockoutPolicy
    temporary_password_ttl: timedelta
    recovery_ttl: timedelta
    # seals the recovery link for notify (IDENTITY_NOTIFY_SEAL_KEYS)
    recovery_seal: Sealer
    keyring: KeyRing | None = None
    # where the recovery email's link points (the gateway's page): IDENTITY_RECOVERY_LINK_URL
    recovery_link_url: str = "http://127.0.0.1:8100/recover"
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    # groups' answer to "does this staff member reach this customer?" (the kit's helper)
    groups_access: GroupsAccess | None = None
    # narrows a staff member's token for the service identity calls (groups)
    exchange: Any = None
    # per-staff match limits and per-address limits on the public doors
    limits: Limits = dataclass_field(default_factory=Limits)
    # Failed sign-ins per unknown username (bounded, per process), so an unknown
    # name slows down exactly as a real account does and timing tells nothing.
    unknown_failures: dict[str, int] = dataclass_field(default_factory=dict)

    def note_unknown_failure(self, username: str, limit: int = 10_000) -> int:
        key = username.strip().lower()
        failures = self.unknown_failures.pop(key, 0) + 1
        self.unknown_failures[key] = failures
        if len(self.unknown_failures) > limit:  # forget the least recently tried
            del self.unknown_failures[next(iter(self.unknown_failures))]
        return failures

    @classmethod
    def from_settings(cls, s: IdentitySettings, clock: Clock | None = None) -> Deps:
        return cls(
            clock=clock or SystemClock(s.zone),
            outbox=OUTBOX,
            vault=SsnVault.from_settings(
                s.ssn_keys.get_secret_value(), s.ssn_active_key, s.ssn_hmac_key.get_secret_value()
            ),
            passwords=Passwords(
                memory_cost=s.argon2_memory_kib,
                time_cost=s.argon2_time_cost,
                parallelism=s.argon2_parallelism,
                threads=s.password_hash_threads,
            ),
            kek=base64.b64decode(s.data_key.get_secret_value()),
            tokens=TokenSettings(
                issuer=s.jwt_issuer,
                audiences=tuple(a for a in s.token_audiences.replace(",", " ").split()),
                access_ttl=timedelta(minutes=s.access_token_minutes),
                exchange_ttl=timedelta(minutes=s.exchange_token_minutes),
                refresh_ttl=timedelta(days=s.refresh_token_days),
            ),
            lockout=LockoutPolicy(
                max_failures=s.signin_max_failures, lock_minutes=s.signin_lock_minutes
            ),
            temporary_password_ttl=timedelta(days=s.temporary_password_days),
            recovery_ttl=timedelta(minutes=s.recovery_link_minutes),
            recovery_seal=Sealer.from_spec(s.notify_seal_keys_spec),
            recovery_link_url=s.recovery_link_url,
            thresholds=thresholds_from(s),
            limits=limits_from(s),
        )


def limits_from(s: IdentitySettings) -> Limits:
    return Limits.of(
        match_per_minute=s.match_rate_per_minute, match_per_day=s.match_rate_per_day,
        client_match_per_minute=s.match_client_rate_per_minute,
        client_match_per_day=s.match_client_rate_per_day,
        signin_per_minute=s.signin_rate_per_minute,
        registration_per_minute=s.registration_rate_per_minute,
        registration_per_day=s.registration_rate_per_day,
        recovery_per_minute=s.recovery_rate_per_minute,
        trusted_proxies=s.trusted_proxies,
    )
