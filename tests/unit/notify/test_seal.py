"""The seal identity puts the recovery link under for notify (shared/servicekit/seal.py)."""

from __future__ import annotations

import base64
import os
import uuid

import pytest

from shared.cli.keys import KINDS, fill_env
from shared.servicekit.seal import Sealer, SealError, recovery_context


def spec(*kids: str) -> tuple[str, dict[str, str]]:
    keys = {k: base64.b64encode(os.urandom(32)).decode() for k in kids}
    return ",".join(f"{k}:{v}" for k, v in keys.items()), keys


def test_sealed_link_opens_only_with_the_key_and_for_its_account() -> None:
    text, _ = spec("s1")
    sealer = Sealer.from_spec(text)
    account = uuid.uuid4()
    link = "https://portal.example/recover?token=tok_secret"
    sealed = sealer.seal(link, recovery_context(account))
    assert sealed.startswith("v1.s1.") and "tok_secret" not in sealed
    assert sealer.seal(link, recovery_context(account)) != sealed  # a fresh nonce each time
    assert sealer.open(sealed, recovery_context(account)) == link
    with pytest.raises(SealError):  # another account's link
        sealer.open(sealed, recovery_context(uuid.uuid4()))
    with pytest.raises(SealError, match="not among"):  # a service without the key
        Sealer.from_spec(spec("s2")[0]).open(sealed, recovery_context(account))
    with pytest.raises(SealError):  # a different key under the same id
        Sealer.from_spec(spec("s1")[0]).open(sealed, recovery_context(account))
    body = sealed.rsplit(".", 1)[1]
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for bad in (sealed.replace("v1.", "v9.", 1), "v1.s1.", "v1.s1.!!!", "plain",
                f"v1.s1.{flipped}", "v1.s1.QUJD"):
        with pytest.raises(SealError) as exc:
            sealer.open(bad, recovery_context(account))
        assert "tok_secret" not in str(exc.value)


def test_rotation_the_first_key_seals_every_key_opens() -> None:
    old_text, _ = spec("s1")
    sealed_before = Sealer.from_spec(old_text).seal("x", "c")
    both = Sealer.from_spec(f"s2:{base64.b64encode(os.urandom(32)).decode()},{old_text}")
    assert both.active == "s2" and both.key_ids == ["s2", "s1"]
    assert both.open(sealed_before, "c") == "x"
    assert both.seal("y", "c").startswith("v1.s2.")


_K1, _K2 = (base64.b64encode(bytes([n]) * 32).decode() for n in (1, 2))


@pytest.mark.parametrize("bad", [
    "", "s1", "s1:notbase64!", f"s1:{base64.b64encode(b'x').decode()}", f"bad id:{_K1}",
    f"s1:{_K1},s1:{_K2}"], ids=["empty", "no-key", "not-base64", "short", "bad-id", "twice"])
def test_bad_key_specs_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        Sealer.from_spec(bad)


def test_csc_keys_gives_identity_and_notify_the_same_fresh_seal_keys() -> None:
    example = ("# kind: seal-keys\nIDENTITY_NOTIFY_SEAL_KEYS=\n"
               "# kind: same-as-IDENTITY_NOTIFY_SEAL_KEYS\nNOTIFY_SEAL_KEYS=\n")
    first = dict(line.split("=", 1) for line in fill_env(example).splitlines()
                 if not line.startswith("#"))
    second = dict(line.split("=", 1) for line in fill_env(example).splitlines()
                  if not line.startswith("#"))
    assert first["IDENTITY_NOTIFY_SEAL_KEYS"] == first["NOTIFY_SEAL_KEYS"]
    assert first["NOTIFY_SEAL_KEYS"] != second["NOTIFY_SEAL_KEYS"]
    sealed = Sealer.from_spec(first["IDENTITY_NOTIFY_SEAL_KEYS"]).seal("z", "c")
    assert Sealer.from_spec(first["NOTIFY_SEAL_KEYS"]).open(sealed, "c") == "z"
    assert Sealer.from_spec(KINDS["seal-keys"]()).active.startswith("s")


def test_production_refuses_to_start_without_seal_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from identity.settings import IdentitySettings
    from notify.settings import NotifySettings
    from shared.servicekit.seal import DEV_SEAL_KEYS
    from shared.servicekit.settings import InsecureSettingsError

    monkeypatch.setenv("CSC_ENV", "prod")
    key = base64.b64encode(os.urandom(32)).decode()
    for name, value in {"NOTIFY_DATABASE_URL": "postgresql://n:p@db/notify",
                        "IDENTITY_DATABASE_URL": "postgresql://i:p@db/identity",
                        "IDENTITY_SSN_KEYS": f"k1:{key}", "IDENTITY_SSN_ACTIVE_KEY": "k1",
                        "IDENTITY_SSN_HMAC_KEY": key, "IDENTITY_DATA_KEY": key}.items():
        monkeypatch.setenv(name, value)
    for var, settings in (("NOTIFY_SEAL_KEYS", NotifySettings),
                          ("IDENTITY_NOTIFY_SEAL_KEYS", IdentitySettings)):
        for seal in (None, DEV_SEAL_KEYS):
            if seal is None:
                monkeypatch.delenv(var, raising=False)
            else:
                monkeypatch.setenv(var, seal)
            with pytest.raises(InsecureSettingsError, match=var):
                settings()
    monkeypatch.setenv("CSC_ENV", "test")
    monkeypatch.delenv("NOTIFY_SEAL_KEYS")
    assert NotifySettings().seal_keys_spec == DEV_SEAL_KEYS


def test_a_recovery_link_opened_on_a_page_leaves_no_token_in_the_access_log() -> None:
    """The gateway's /recover?token=... page: uvicorn's access line is redacted."""
    import io
    import logging
    import sys

    from shared.servicekit.logs import configure_logging

    out = io.StringIO()
    configure_logging("gateway", env="test", stream=out)
    access = logging.getLogger("uvicorn.access")
    # a uvicorn started earlier in this process with access_log=False detached it
    was = access.propagate, access.disabled, access.level
    access.propagate, access.disabled = True, False
    access.setLevel(logging.INFO)
    try:
        access.info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
            "/recover?token=csc_pr_SECRETsecret-123_x&lang=en", "1.1", 200)
    finally:
        access.propagate, access.disabled = was[:2]
        access.setLevel(was[2])
        configure_logging("tests", env="test", stream=sys.stdout)
    line = out.getvalue()
    assert "/recover?token=***&lang=en" in line
    assert "SECRET" not in line
