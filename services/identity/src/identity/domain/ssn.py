"""Social Security numbers at rest: AES-256-GCM with rotatable keys, a keyed lookup hash.

A sealed SSN is stored as three things: the ciphertext (with the id of the key
that made it), an HMAC-SHA256 of the nine digits for exact-match lookup, and the
last four digits for display. The row id is the associated data, so a
ciphertext copied onto another row does not open. Nothing here puts the digits
or a key into a message, a repr or an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.rules.ssn import normalize_ssn
from shared.servicekit.errors import DomainError

NONCE_BYTES = 12
TAG_BYTES = 16
AES_KEY_BYTES = 32
MIN_HMAC_KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")


class SsnUnavailable(DomainError):
    """A stored SSN cannot be opened: unknown key id, or ciphertext/row mismatch."""


@dataclass(frozen=True)
class SealedSsn:
    """What a row stores; ciphertext and lookup stay out of the repr."""

    ciphertext: bytes = field(repr=False)
    key_id: str
    lookup: bytes = field(repr=False)
    last4: str


class SsnVault:
    """Seals and opens SSNs; holds the keys, never shows them."""

    __slots__ = ("_active_key_id", "_ciphers", "_hmac_key")

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str, hmac_key: bytes) -> None:
        if not keys:
            raise ValueError("at least one SSN encryption key is required")
        ciphers: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise ValueError("an SSN key id must be 1-32 characters of A-Z a-z 0-9 . _ -")
            if len(key) != AES_KEY_BYTES:
                raise ValueError(f"SSN key {key_id!r} must be {AES_KEY_BYTES} bytes (AES-256)")
            ciphers[key_id] = AESGCM(bytes(key))
        if active_key_id not in ciphers:
            raise ValueError(f"the active SSN key {active_key_id!r} is not among the keys")
        if len(hmac_key) < MIN_HMAC_KEY_BYTES:
            raise ValueError(f"the SSN lookup key must be at least {MIN_HMAC_KEY_BYTES} bytes")
        self._ciphers = ciphers
        self._active_key_id = active_key_id
        self._hmac_key = bytes(hmac_key)

    @classmethod
    def from_settings(cls, keys_spec: str, active: str, hmac_key_b64: str) -> SsnVault:
        """Build from ``"kid1:BASE64,kid2:BASE64"``, the active kid and a base64 HMAC key."""
        keys: dict[str, bytes] = {}
        for entry in keys_spec.split(","):
            if not entry.strip():
                continue
            key_id, sep, encoded = entry.strip().partition(":")
            key_id = key_id.strip()
            if not sep or not key_id:
                raise ValueError("SSN keys must be written as 'kid:BASE64' separated by commas")
            if key_id in keys:
                raise ValueError(f"SSN key id {key_id!r} appears twice")
            keys[key_id] = _b64(encoded, f"SSN key {key_id!r}")
        return cls(keys, active.strip(), _b64(hmac_key_b64, "the SSN lookup key"))

    @property
    def active_key_id(self) -> str:
        return self._active_key_id

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._ciphers)

    def __repr__(self) -> str:
        ids = ", ".join(sorted(self._ciphers))
        return f"SsnVault(key_ids=[{ids}], active_key_id={self._active_key_id!r})"

    def lookup(self, digits: str) -> bytes:
        """HMAC-SHA256 of the normalised nine digits: equal SSNs, equal lookups."""
        normalized = normalize_ssn(digits)
        return hmac.new(self._hmac_key, normalized.encode("ascii"), hashlib.sha256).digest()

    def lookups_of_digits(self, candidates: list[str]) -> list[bytes]:
        """``lookup`` of many nine-digit strings already known to be well formed
        (the slips of a query's SSN): one HMAC each, no parsing."""
        key = self._hmac_key
        return [hmac.digest(key, d.encode("ascii"), "sha256") for d in candidates]

    def seal(self, digits: str, row_id: UUID) -> SealedSsn:
        """Encrypt with the active key; the row id is bound in as associated data."""
        normalized = normalize_ssn(digits)
        nonce = os.urandom(NONCE_BYTES)
        cipher = self._ciphers[self._active_key_id]
        ciphertext = nonce + cipher.encrypt(nonce, normalized.encode("ascii"), row_id.bytes)
        return SealedSsn(
            ciphertext=ciphertext,
            key_id=self._active_key_id,
            lookup=self.lookup(normalized),
            last4=normalized[-4:],
        )

    def open(self, sealed_ciphertext: bytes, key_id: str, row_id: UUID) -> str:
        """The nine digits of a sealed SSN; SsnUnavailable if it cannot be trusted."""
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SsnUnavailable("the SSN was sealed with a key this service does not hold")
        if len(sealed_ciphertext) < NONCE_BYTES + TAG_BYTES:
            raise SsnUnavailable("the stored SSN is damaged")
        nonce, body = sealed_ciphertext[:NONCE_BYTES], sealed_ciphertext[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, body, row_id.bytes)
        except InvalidTag:
            raise SsnUnavailable("the stored SSN does not match its row or was altered") from None
        text = plain.decode("ascii", errors="replace")
        if len(text) != 9 or not text.isdigit():
            raise SsnUnavailable("the stored SSN is damaged")
        return text

    def needs_rotation(self, key_id: str) -> bool:
        """True when a row was sealed with a key other than the active one."""
        return key_id != self._active_key_id


def _b64(encoded: str, what: str) -> bytes:
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None
