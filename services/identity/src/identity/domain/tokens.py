"""Signing keys, access tokens and opaque tokens: pure building blocks, no I/O.

Access tokens are ES256 JWTs (P-256) verified by every other service against the
JWKS identity publishes (``shared.servicekit.auth.JwksVerifier``). Private keys
are stored sealed with a key-encryption key (AES-256-GCM, the kid as associated
data, so a blob cannot be moved to another key's row). Refresh tokens and
password-recovery link tokens are opaque random strings stored only as hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALGORITHM = "ES256"
# A token carrying this scope can do one thing only: change the password
# (POST /v1/me/password). Every other route must answer 403 to it.
PASSWORD_CHANGE_SCOPE = "password-change"  # noqa: S105 (a scope name, not a secret)
REFRESH_TOKEN_PREFIX = "csc_rt_"  # noqa: S105 (prefixes, not secrets)
RECOVERY_TOKEN_PREFIX = "csc_pr_"  # noqa: S105
_NONCE_BYTES = 12

Kind = Literal["staff", "customer"]
KeyStatus = Literal["active", "retiring", "retired"]


class KeyUnavailable(Exception):
    """A signing key cannot be used: wrong key-encryption key or kid, or a tampered blob."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey
    created_at: datetime


# every service a signed-in person's token is for, by default (each service is its
# own audience and accepts only tokens naming it)
SERVICES = ("identity", "enrollment", "groups", "notify", "readiness", "sync-iwds", "gateway")
# OAuth2 token exchange (RFC 8693)
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105


@dataclass(frozen=True)
class TokenSettings:
    issuer: str = "csc-identity"
    audiences: tuple[str, ...] = SERVICES
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=14)
    exchange_ttl: timedelta = timedelta(minutes=5)

    @property
    def audience(self) -> str:
        """identity's own audience name."""
        return "identity"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return int(moment.timestamp())


# -- signing keys ------------------------------------------------------------------


def generate_signing_key(now: datetime) -> SigningKey:
    """A fresh P-256 key with a short random url-safe kid."""
    return SigningKey(secrets.token_urlsafe(9), ec.generate_private_key(ec.SECP256R1()), now)


def seal_private_key(key: SigningKey, kek: bytes) -> bytes:
    """PKCS8 DER of the private key under AES-256-GCM: 12-byte nonce, then ciphertext+tag."""
    if len(kek) != 32:
        raise ValueError("the key-encryption key must be 32 bytes (AES-256)")
    der = key.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, der, key.kid.encode("utf-8"))


def open_private_key(blob: bytes, kid: str, created_at: datetime, kek: bytes) -> SigningKey:
    """The key sealed by :func:`seal_private_key`; KeyUnavailable if anything does not match."""
    if len(kek) != 32 or len(blob) <= _NONCE_BYTES:
        raise KeyUnavailable(f"signing key {kid} cannot be opened")
    nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
    try:
        der = AESGCM(kek).decrypt(nonce, sealed, kid.encode("utf-8"))
        private = serialization.load_der_private_key(der, password=None)
    except (InvalidTag, ValueError, TypeError) as exc:
        raise KeyUnavailable(f"signing key {kid} cannot be opened") from exc
    if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
        private.curve, ec.SECP256R1
    ):
        raise KeyUnavailable(f"signing key {kid} is not a P-256 key")
    return SigningKey(kid, private, created_at)


def public_jwk(key: SigningKey) -> dict[str, str]:
    """The public half as a JWK (never the private ``d``)."""
    numbers = key.private_key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
        "kid": key.kid,
        "use": "sig",
        "alg": ALGORITHM,
    }


def jwks(keys: Iterable[SigningKey]) -> dict[str, list[dict[str, str]]]:
    return {"keys": [public_jwk(k) for k in keys]}


# -- access tokens -----------------------------------------------------------------


def issue_access_token(
    key: SigningKey,
    *,
    subject: str,
    kind: Kind,
    roles: Iterable[str] = (),
    session_id: str,
    password_change_required: bool = False,
    now: datetime,
    settings: TokenSettings,
) -> str:
    """A signed access token for ``subject``.

    Staff roles travel as a sorted list; a customer token never carries roles.
    With ``password_change_required`` the token gets ``scope: "password-change"``
    and is good for changing the password and nothing else.
    """
    role_list = sorted(set(roles))
    if kind == "customer" and role_list:
        raise ValueError("customer tokens carry no roles")
    if kind not in ("staff", "customer"):
        raise ValueError(f"unknown principal kind {kind!r}")
    iat = _epoch(now)
    claims: dict[str, Any] = {
        "sub": subject,
        "kind": kind,
        "roles": role_list,
        "sid": session_id,
        "iss": settings.issuer,
        "aud": list(settings.audiences),
        "iat": iat,
        "exp": iat + int(settings.access_ttl.total_seconds()),
        "jti": secrets.token_urlsafe(16),
    }
    if password_change_required:
        claims["scope"] = PASSWORD_CHANGE_SCOPE
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


class ExchangeRefused(ValueError):
    """The token may not be narrowed so (RFC 8693 ``invalid_target`` / ``invalid_grant``)."""


def audiences_of(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


def issue_exchanged_token(
    key: SigningKey, subject_claims: dict[str, Any], audiences: Iterable[str], *,
    now: datetime, settings: TokenSettings,
) -> tuple[str, int]:
    """A token for ``audiences`` only, from a verified staff or customer token's claims:
    (token, seconds it lives). The audiences must be among the subject token's own, so
    a narrowed token can never be widened again (a service holding a token made for it
    alone cannot turn it into one for a third service), and it never outlives the
    subject token. The same person, roles, session and scope."""
    wanted = sorted(set(audiences))
    held = set(audiences_of(subject_claims))
    if not wanted:
        raise ExchangeRefused("name the audience the token is for")
    beyond = [a for a in wanted if a not in held]
    if beyond:
        raise ExchangeRefused(f"the token is not for {', '.join(beyond)}")
    iat = _epoch(now)
    exp = min(int(subject_claims["exp"]), iat + int(settings.exchange_ttl.total_seconds()))
    if exp <= iat:
        raise ExchangeRefused("the token has expired")
    claims: dict[str, Any] = {
        k: subject_claims[k] for k in ("sub", "kind", "roles", "sid", "scope")
        if k in subject_claims
    }
    claims.update({"iss": settings.issuer, "aud": wanted, "iat": iat, "exp": exp,
                   "jti": secrets.token_urlsafe(16)})
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    return token, exp - iat


# -- opaque tokens -----------------------------------------------------------------


def hash_token(token: str) -> bytes:
    # SHA-256 without salt or stretching is right here: the tokens carry 256 bits
    # of randomness, so there is nothing to brute-force, and the hash must be
    # deterministic so the stored row can be found by it.
    return hashlib.sha256(token.encode("utf-8")).digest()


def token_matches(token: str, stored_hash: bytes) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(hash_token(token), stored_hash)


def new_opaque_token(prefix: str) -> tuple[str, bytes]:
    """``(token, hash)``: 32 random bytes, url-safe base64 without padding, after ``prefix``.

    Hand the token to its holder once; store only the hash.
    """
    token = prefix + _b64(secrets.token_bytes(32))
    return token, hash_token(token)


def new_refresh_token() -> tuple[str, bytes]:
    return new_opaque_token(REFRESH_TOKEN_PREFIX)


def new_recovery_token() -> tuple[str, bytes]:
    return new_opaque_token(RECOVERY_TOKEN_PREFIX)


# -- key rotation ------------------------------------------------------------------


class KeyRing:
    """Signing keys and their status. Active keys sign; active and retiring keys are
    published, so tokens signed before a rotation keep verifying until they expire;
    retired keys are neither used nor published."""

    def __init__(self, entries: Iterable[tuple[SigningKey, KeyStatus]]) -> None:
        self.entries: list[tuple[SigningKey, KeyStatus]] = sorted(
            entries, key=lambda e: e[0].created_at, reverse=True
        )

    def signing_key(self) -> SigningKey:
        """The newest active key."""
        for key, status in self.entries:
            if status == "active":
                return key
        raise KeyUnavailable("no active signing key")

    def published(self) -> list[SigningKey]:
        """Active and retiring keys, newest first: what the JWKS lists."""
        return [k for k, s in self.entries if s in ("active", "retiring")]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return jwks(self.published())

    def rotate(self, now: datetime) -> tuple[SigningKey, list[tuple[SigningKey, KeyStatus]]]:
        """A new active key; the old active keys retire softly (still published),
        the previously retiring ones leave the JWKS. Rotate no more often than the
        access-token lifetime, so no live token loses its key."""
        new = generate_signing_key(now)
        after: dict[KeyStatus, KeyStatus] = {
            "active": "retiring",
            "retiring": "retired",
            "retired": "retired",
        }
        statuses: list[tuple[SigningKey, KeyStatus]] = [(new, "active")]
        statuses += [(k, after[s]) for k, s in self.entries]
        return new, statuses
