"""Sealing a short secret for one other service: AES-256-GCM under a shared key ring.

A sealed value travels where many can read it (an event on a topic, the outbox, a
dead letter) but only the holders of the key can open it. Identity seals the
password-recovery link for notify this way (``PasswordRecoveryRequested.sealed_link``).

Keys are written as identity's SSN keys are: ``"kid:BASE64,kid:BASE64"`` (32-byte
AES keys). The FIRST key seals; every listed key opens. To rotate, put the new key
first and keep the old one after it until nothing sealed with it is still in flight
(a topic's retention); both services hold the same list.

A sealed value is ``v1.<kid>.<base64url(nonce | ciphertext | tag)>``. The context
(associated data) binds it to its purpose and subject: a value sealed for one
account does not open as another's.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from shared.servicekit.settings import InsecureSettingsError

VERSION = "v1"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Development and tests only: identity and notify share it when their seal keys are
# not set, so `make dev` and the test stacks need no setup; CSC_ENV=prod refuses to
# start without keys of its own (``seal_keys_spec``).
DEV_SEAL_KEYS = "dev1:ZGV2LW9ubHktc2VhbC1rZXktbm90LWZvci1wcm9kISE="


class SealError(Exception):
    """A sealed value cannot be opened: malformed, unknown key id, or tampered with
    (or sealed for another context). The message never contains the value."""


class Sealer:
    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise ValueError("at least one seal key is required")
        self._ciphers: dict[str, AESGCM] = {}
        for kid, key in keys.items():
            if not _KEY_ID.fullmatch(kid):
                raise ValueError("a seal key id must be 1-32 characters of A-Z a-z 0-9 _ -")
            if len(key) != KEY_BYTES:
                raise ValueError(f"seal key {kid!r} must be {KEY_BYTES} bytes (AES-256)")
            self._ciphers[kid] = AESGCM(bytes(key))
        self.active = next(iter(self._ciphers))

    @classmethod
    def from_spec(cls, spec: str) -> Sealer:
        """From ``"kid:BASE64[,kid:BASE64...]"``; the first key seals."""
        keys: dict[str, bytes] = {}
        for entry in spec.split(","):
            if not entry.strip():
                continue
            kid, sep, encoded = entry.strip().partition(":")
            if not sep or not kid.strip():
                raise ValueError("seal keys must be written as 'kid:BASE64' separated by commas")
            if kid in keys:
                raise ValueError(f"seal key id {kid!r} is listed twice")
            try:
                keys[kid.strip()] = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"seal key {kid!r} is not valid base64") from None
        return cls(keys)

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.active].encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{VERSION}.{self.active}.{body}"

    def open(self, sealed: str, context: str) -> str:
        version, _, rest = sealed.partition(".")
        kid, _, body = rest.partition(".")
        if version != VERSION or not kid or not body:
            raise SealError("not a sealed value of a known version")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise SealError(f"sealed with key {kid!r}, which is not among this service's keys")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise SealError("the sealed value is not valid base64") from None
        if len(raw) <= NONCE_BYTES + 16:
            raise SealError("the sealed value is too short")
        try:
            opened = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                    context.encode("utf-8"))
        except InvalidTag:
            raise SealError("the sealed value does not open (tampered, or another "
                            "context)") from None
        return opened.decode("utf-8")


def seal_keys_spec(value: SecretStr | None, env: str, var: str) -> str:
    """The key list a service seals or opens with: its setting, or the development key
    outside production. In production an unset or development key refuses the start."""
    spec = value.get_secret_value().strip() if value is not None else ""
    if env == "prod" and (not spec or spec == DEV_SEAL_KEYS):
        raise InsecureSettingsError(
            f"refusing to start with CSC_ENV={env}: {var} is "
            + ("empty" if not spec else "the development key"))
    return spec or DEV_SEAL_KEYS


def recovery_context(account_id: object) -> str:
    """What a recovery link is sealed for: its purpose and its account."""
    return f"csc.password-recovery.v1:{account_id}"
