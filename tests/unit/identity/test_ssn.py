"""SSN vault: AES-GCM bound to the row, rotatable keys, keyed lookup, no leaks."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid

import pytest

from identity.domain.accounts import DomainError
from identity.domain.ssn import SealedSsn, SsnUnavailable, SsnVault

SSN = "123-45-6789"
DIGITS = "123456789"
# fixed test keys: parallel workers must collect the same test ids
K1, K2, HK = (hashlib.sha256(name).digest() for name in (b"k1", b"k2", b"hk"))


def vault(active: str = "k1", hmac_key: bytes = HK) -> SsnVault:
    return SsnVault({"k1": K1, "k2": K2}, active, hmac_key)


def _leaks(text: str) -> bool:
    return DIGITS in text or "123-45" in text or "456789" in text


def test_round_trip() -> None:
    v, row = vault(), uuid.uuid4()
    sealed = v.seal(SSN, row)
    assert isinstance(sealed, SealedSsn)
    assert sealed.key_id == "k1"
    assert sealed.last4 == "6789"
    assert len(sealed.ciphertext) == 12 + 9 + 16
    assert DIGITS.encode() not in sealed.ciphertext
    assert v.open(sealed.ciphertext, sealed.key_id, row) == DIGITS


def test_same_number_seals_differently_each_time() -> None:
    v, row = vault(), uuid.uuid4()
    a, b = v.seal(SSN, row), v.seal(DIGITS, row)
    assert a.ciphertext[:12] != b.ciphertext[:12]
    assert a.ciphertext != b.ciphertext
    assert a.lookup == b.lookup


def test_another_row_id_does_not_open() -> None:
    v = vault()
    sealed = v.seal(SSN, uuid.uuid4())
    with pytest.raises(SsnUnavailable) as info:
        v.open(sealed.ciphertext, sealed.key_id, uuid.uuid4())
    assert isinstance(info.value, DomainError)
    assert not _leaks(str(info.value))


@pytest.mark.parametrize("position", [0, 11, 12, 20, -1])
def test_tampered_ciphertext_does_not_open(position: int) -> None:
    v, row = vault(), uuid.uuid4()
    data = bytearray(v.seal(SSN, row).ciphertext)
    data[position] ^= 0x01
    with pytest.raises(SsnUnavailable):
        v.open(bytes(data), "k1", row)


@pytest.mark.parametrize(
    "blob", [b"", b"\x00" * 27, os.urandom(37)], ids=["empty", "short", "random"]
)
def test_short_or_random_ciphertext_does_not_open(blob: bytes) -> None:
    with pytest.raises(SsnUnavailable):
        vault().open(blob, "k1", uuid.uuid4())


def test_unknown_key_id() -> None:
    v, row = vault(), uuid.uuid4()
    sealed = v.seal(SSN, row)
    with pytest.raises(SsnUnavailable):
        v.open(sealed.ciphertext, "k9", row)
    with pytest.raises(SsnUnavailable):  # the other key does not open it either
        v.open(sealed.ciphertext, "k2", row)


def test_old_key_still_opens_after_rotation() -> None:
    row = uuid.uuid4()
    old = vault("k1").seal(SSN, row)
    rotated = vault("k2")
    assert rotated.needs_rotation(old.key_id)
    assert rotated.open(old.ciphertext, old.key_id, row) == DIGITS
    fresh = rotated.seal(SSN, row)
    assert fresh.key_id == "k2"
    assert not rotated.needs_rotation(fresh.key_id)
    assert fresh.lookup == old.lookup  # lookups survive key rotation


def test_retired_key_no_longer_opens() -> None:
    row = uuid.uuid4()
    old = vault("k1").seal(SSN, row)
    only_new = SsnVault({"k2": K2}, "k2", HK)
    with pytest.raises(SsnUnavailable):
        only_new.open(old.ciphertext, old.key_id, row)


def test_lookup_is_deterministic_and_keyed() -> None:
    v = vault()
    assert v.lookup(SSN) == v.lookup(DIGITS) == v.lookup(f"  {SSN} ")
    assert len(v.lookup(SSN)) == 32
    assert v.lookup(SSN) != v.lookup("123-45-6788")
    assert vault(hmac_key=os.urandom(32)).lookup(SSN) != v.lookup(SSN)


@pytest.mark.parametrize("bad", ["123-45-678", "666-12-3456", "12-345-6789", ""])
def test_seal_and_lookup_refuse_invalid_numbers_without_echo(bad: str) -> None:
    v = vault()
    with pytest.raises(ValueError) as info:
        v.seal(bad, uuid.uuid4())
    assert not any(ch.isdigit() for ch in str(info.value))
    with pytest.raises(ValueError):
        v.lookup(bad)


def test_nothing_shows_the_digits_or_keys() -> None:
    v, row = vault(), uuid.uuid4()
    sealed = v.seal(SSN, row)
    for text in (repr(v), str(v), repr(sealed), str(sealed)):
        assert not _leaks(text)
        for key in (K1, K2, HK):
            assert key.hex() not in text and base64.b64encode(key).decode() not in text
    assert "k1" in repr(v) and "6789" in repr(sealed)


def test_construction_validates_keys() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SsnVault({"k1": os.urandom(16)}, "k1", HK)
    with pytest.raises(ValueError, match="not among the keys"):
        SsnVault({"k1": K1}, "k2", HK)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        SsnVault({"k1": K1}, "k1", os.urandom(31))
    with pytest.raises(ValueError, match="at least one"):
        SsnVault({}, "k1", HK)
    with pytest.raises(ValueError, match="key id"):
        SsnVault({"k 1:": K1}, "k 1:", HK)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_from_settings() -> None:
    v = SsnVault.from_settings(f"k1:{_b64(K1)}, k2:{_b64(K2)}", "k2", _b64(HK))
    assert v.key_ids == {"k1", "k2"}
    assert v.active_key_id == "k2"
    row = uuid.uuid4()
    assert vault("k1").open(v.seal(SSN, row).ciphertext, "k2", row) == DIGITS
    assert v.lookup(SSN) == vault().lookup(SSN)


@pytest.mark.parametrize(
    ("spec", "active", "hmac_b64", "message"),
    [
        ("", "k1", _b64(HK), "at least one"),
        (f"{_b64(K1)}", "k1", _b64(HK), "kid:BASE64"),
        (f":{_b64(K1)}", "k1", _b64(HK), "kid:BASE64"),
        ("k1:not base64!", "k1", _b64(HK), "not valid base64"),
        (f"k1:{_b64(K1)},k1:{_b64(K2)}", "k1", _b64(HK), "twice"),
        (f"k1:{_b64(K1)}", "k1", "%%%", "not valid base64"),
        (f"k1:{_b64(K1)}", "k3", _b64(HK), "not among"),
    ],
)
def test_from_settings_refuses_bad_specs(
    spec: str, active: str, hmac_b64: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        SsnVault.from_settings(spec, active, hmac_b64)
    assert _b64(K1) not in str(info.value)
