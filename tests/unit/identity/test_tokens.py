"""identity's token building blocks: tokens issued here verify with the verifier
every other service uses; sealed keys, opaque tokens and key rotation."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
import pytest

from identity.domain.tokens import (
    PASSWORD_CHANGE_SCOPE,
    ExchangeRefused,
    KeyRing,
    KeyStatus,
    KeyUnavailable,
    SigningKey,
    TokenSettings,
    generate_signing_key,
    hash_token,
    issue_access_token,
    issue_exchanged_token,
    jwks,
    new_recovery_token,
    new_refresh_token,
    open_private_key,
    public_jwk,
    seal_private_key,
    token_matches,
)
from shared.servicekit.auth import JwksVerifier, TokenError

SETTINGS = TokenSettings()
KEK = os.urandom(32)


def now() -> datetime:
    return datetime.now(UTC)


def verifier_for(*keys: SigningKey) -> JwksVerifier:
    return JwksVerifier.from_jwks(
        jwks(keys), issuer=SETTINGS.issuer, audience=SETTINGS.audience
    )


def token(
    key: SigningKey,
    *,
    at: datetime | None = None,
    subject: str = "s-1",
    kind: Literal["staff", "customer"] = "staff",
    roles: Iterable[str] = (),
    password_change_required: bool = False,
) -> str:
    return issue_access_token(
        key, subject=subject, kind=kind, roles=roles, session_id="sess-1",
        password_change_required=password_change_required, now=at or now(), settings=SETTINGS,
    )


async def test_staff_token_verifies_with_roles() -> None:
    key = generate_signing_key(now())
    tok = token(key, roles=["staff", "admin", "staff"])
    principal = await verifier_for(key).verify(tok)
    assert principal.subject == "s-1" and principal.kind == "staff"
    assert principal.roles == {"admin", "staff"}
    assert principal.claims["roles"] == ["admin", "staff"]
    assert principal.claims["sid"] == "sess-1" and principal.claims["jti"]
    assert "scope" not in principal.claims
    assert jwt.get_unverified_header(tok) == {"alg": "ES256", "kid": key.kid, "typ": "JWT"}
    assert principal.claims["exp"] - principal.claims["iat"] == 900


async def test_customer_token_has_no_roles() -> None:
    key = generate_signing_key(now())
    principal = await verifier_for(key).verify(token(key, subject="c-9", kind="customer"))
    assert principal.kind == "customer" and principal.roles == frozenset()
    with pytest.raises(ValueError):
        token(key, kind="customer", roles=["admin"])


async def test_password_change_scope_only_when_asked() -> None:
    key = generate_signing_key(now())
    v = verifier_for(key)
    scoped = await v.verify(token(key, kind="customer", password_change_required=True))
    assert scoped.claims["scope"] == PASSWORD_CHANGE_SCOPE == "password-change"
    plain = await v.verify(token(key, kind="customer"))
    assert "scope" not in plain.claims


async def test_jti_unique() -> None:
    key = generate_signing_key(now())
    v = verifier_for(key)
    a, b = await v.verify(token(key)), await v.verify(token(key))
    assert a.claims["jti"] != b.claims["jti"]


async def test_expires_after_access_ttl() -> None:
    key = generate_signing_key(now())
    v = verifier_for(key)
    assert await v.verify(token(key, at=now() - SETTINGS.access_ttl + timedelta(seconds=30)))
    with pytest.raises(TokenError):
        await v.verify(token(key, at=now() - SETTINGS.access_ttl - timedelta(seconds=5)))


async def test_wrong_issuer_or_audience_refused() -> None:
    key = generate_signing_key(now())
    other = TokenSettings(issuer="elsewhere", audiences=("other",))
    tok = issue_access_token(
        key, subject="s", kind="staff", session_id="x", now=now(), settings=other
    )
    with pytest.raises(TokenError):
        await verifier_for(key).verify(tok)


async def test_a_token_is_for_its_audiences_only() -> None:
    key = generate_signing_key(now())
    narrow = TokenSettings(audiences=("enrollment", "identity"))
    tok = issue_access_token(key, subject="s", kind="staff", session_id="x", now=now(),
                             settings=narrow)
    for service in ("enrollment", "identity"):
        assert await JwksVerifier.from_jwks(jwks([key]), issuer=narrow.issuer,
                                            audience=service).verify(tok)
    with pytest.raises(TokenError, match=r"(?i)audience"):
        await JwksVerifier.from_jwks(jwks([key]), issuer=narrow.issuer,
                                     audience="groups").verify(tok)


async def test_an_exchanged_token_is_narrower_and_never_widens_again() -> None:
    key = generate_signing_key(now())
    v = verifier_for(key)
    full = await v.claims_for_exchange(token(key, roles=["staff"]))
    groups_only, lives = issue_exchanged_token(key, full, ["groups"], now=now(),
                                               settings=SETTINGS)
    assert 0 < lives <= SETTINGS.exchange_ttl.total_seconds()
    claims = await JwksVerifier.from_jwks(jwks([key]), issuer=SETTINGS.issuer,
                                          audience="groups").claims_for_exchange(groups_only)
    assert claims["aud"] == ["groups"] and claims["sid"] == full["sid"]
    assert claims["roles"] == ["staff"] and claims["exp"] <= full["exp"]
    # groups cannot turn the token it got into one for a third service
    with pytest.raises(ExchangeRefused, match="not for identity"):
        issue_exchanged_token(key, claims, ["identity"], now=now(), settings=SETTINGS)
    with pytest.raises(ExchangeRefused):
        issue_exchanged_token(key, full, [], now=now(), settings=SETTINGS)
    # never outlives the token it came from
    short = {**full, "exp": int(now().timestamp()) + 10}
    _, lives = issue_exchanged_token(key, short, ["groups"], now=now(), settings=SETTINGS)
    assert lives <= 10


def test_naive_datetime_refused() -> None:
    key = generate_signing_key(now())
    with pytest.raises(ValueError):
        token(key, at=datetime.now())


async def test_rotation_retiring_verifies_retired_does_not() -> None:
    first = generate_signing_key(now() - timedelta(days=2))
    ring = KeyRing([(first, "active")])
    old_token = token(ring.signing_key())

    second, statuses = ring.rotate(now() - timedelta(days=1))
    ring = KeyRing(statuses)
    assert ring.signing_key() == second
    assert ring.published() == [second, first]
    assert await verifier_for(*ring.published()).verify(old_token)  # retiring: still good

    third, statuses = ring.rotate(now())
    ring = KeyRing(statuses)
    assert [k.kid for k in ring.published()] == [third.kid, second.kid]
    with pytest.raises(TokenError):
        await verifier_for(*ring.published()).verify(old_token)  # retired: gone
    assert await verifier_for(*ring.published()).verify(token(ring.signing_key()))


def test_rotate_statuses() -> None:
    t0 = now()
    a, b, c = (generate_signing_key(t0 - timedelta(days=d)) for d in (1, 2, 3))
    new, statuses = KeyRing([(c, "retired"), (a, "active"), (b, "retiring")]).rotate(t0)
    expected: list[tuple[SigningKey, KeyStatus]] = [
        (new, "active"), (a, "retiring"), (b, "retired"), (c, "retired"),
    ]
    assert statuses == expected
    assert new.created_at == t0 and new.kid not in {a.kid, b.kid, c.kid}


def test_empty_ring_has_no_signing_key() -> None:
    with pytest.raises(KeyUnavailable):
        KeyRing([(generate_signing_key(now()), "retired")]).signing_key()
    assert KeyRing([]).published() == []


def test_seal_open_round_trip() -> None:
    key = generate_signing_key(now())
    blob = seal_private_key(key, KEK)
    opened = open_private_key(blob, key.kid, key.created_at, KEK)
    assert opened.kid == key.kid and opened.created_at == key.created_at
    assert opened.private_key.private_numbers() == key.private_key.private_numbers()
    assert seal_private_key(key, KEK) != blob  # fresh nonce each time


def test_open_refuses_tamper_wrong_kek_wrong_kid() -> None:
    key = generate_signing_key(now())
    blob = seal_private_key(key, KEK)
    for i in (0, 20, len(blob) - 1):  # nonce, ciphertext, tag
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(KeyUnavailable):
            open_private_key(bytes(tampered), key.kid, key.created_at, KEK)
    with pytest.raises(KeyUnavailable):
        open_private_key(blob, key.kid, key.created_at, os.urandom(32))
    with pytest.raises(KeyUnavailable):
        open_private_key(blob, "another-kid", key.created_at, KEK)
    with pytest.raises(KeyUnavailable):
        open_private_key(blob[:10], key.kid, key.created_at, KEK)


def test_public_jwk_has_no_private_part() -> None:
    key = generate_signing_key(now())
    jwk = public_jwk(key)
    assert "d" not in jwk
    assert {k: jwk[k] for k in ("kty", "crv", "kid", "use", "alg")} == {
        "kty": "EC", "crv": "P-256", "kid": key.kid, "use": "sig", "alg": "ES256",
    }
    assert jwks([key]) == {"keys": [jwk]}


def test_opaque_tokens() -> None:
    refresh = [new_refresh_token() for _ in range(10_000)]
    assert len({t for t, _ in refresh}) == 10_000
    assert len({h for _, h in refresh}) == 10_000
    for tok, digest in refresh[:100]:
        assert tok.startswith("csc_rt_") and "=" not in tok
        assert len(tok) == len("csc_rt_") + 43
        assert hash_token(tok) == digest and len(digest) == 32
        assert token_matches(tok, digest)
    recovery, digest = new_recovery_token()
    assert recovery.startswith("csc_pr_") and hash_token(recovery) == digest
    assert not token_matches(recovery, refresh[0][1])
