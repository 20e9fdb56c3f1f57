"""The SMTP pool against a real SMTP server (the devstack sink)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from notify.mail import SmtpPool
from notify.settings import NotifySettings
from shared.devstack.smtp_sink import FailureRules, MailSink, list_messages

DATA = b"From: a@csc.example\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


def settings(port: int, monkeypatch: pytest.MonkeyPatch) -> NotifySettings:
    monkeypatch.setenv("CSC_ENV", "dev")
    return NotifySettings(smtp_port=port, smtp_pool_size=2, smtp_timeout_seconds=5)


async def test_pool_reuses_and_replaces_connections_and_classifies_replies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules = FailureRules(refuse=("gone@example.org",), defer=("slow@example.org",))
    sink = MailSink(tmp_path, smtp_port=0, web_port=None, rules=rules)
    await sink.start()
    pool = SmtpPool(settings(sink.smtp_port, monkeypatch))
    try:
        ok = await pool.send("a@csc.example", "b@example.org", DATA)
        assert ok.outcome == "sent" and ok.reply.startswith("250")
        gone = await pool.send("a@csc.example", "gone@example.org", DATA)
        assert (gone.outcome, gone.suppress) == ("permanent", True)
        assert gone.reply.startswith("550")
        slow = await pool.send("a@csc.example", "slow@example.org", DATA)
        assert (slow.outcome, slow.suppress) == ("temporary", False)
        # the refused envelopes were reset: the next email on the same connections
        # carries its own recipient only (and a quoted-style address takes sendmail)
        after = await pool.send("a@csc.example", "c@example.org", DATA)
        quoted = await pool.send("a@csc.example", '"d e"@example.org', DATA)
        assert (after.outcome, quoted.outcome) == ("sent", "sent")
        assert sorted(m.rcpt_tos[0] for m in list_messages(tmp_path)) == [
            '"d e"@example.org', "b@example.org", "c@example.org"]
        assert all(len(m.rcpt_tos) == 1 for m in list_messages(tmp_path))
        # the server goes away and comes back: pooled connections are dead, a fresh one
        # is made and the email still goes
        await sink.stop()
        down = await pool.send("a@csc.example", "b@example.org", DATA)
        assert down.outcome == "temporary"
        await sink.start()
        again = await pool.send("a@csc.example", "b@example.org", DATA)
        assert again.outcome == "sent"
    finally:
        await pool.close()
        await sink.stop()
    assert len(list_messages(tmp_path)) == 4


class _Store:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"notify"
          and auth_data.password == b"s3cret-pass")
    return AuthResult(success=ok)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_pool_logs_in_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _Store()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(store, authenticator=_authenticator, auth_required=True,
                     auth_require_tls=False), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("CSC_ENV", "dev")
    good = SmtpPool(NotifySettings(smtp_port=port, smtp_username="notify",
                                   smtp_password="s3cret-pass", smtp_timeout_seconds=5))
    bad = SmtpPool(NotifySettings(smtp_port=port, smtp_username="notify",
                                  smtp_password="wrong", smtp_timeout_seconds=2))
    anonymous = SmtpPool(NotifySettings(smtp_port=port, smtp_timeout_seconds=5))
    try:
        assert (await good.send("a@csc.example", "b@example.org", DATA)).outcome == "sent"
        refused = await bad.send("a@csc.example", "b@example.org", DATA)
        # our credentials are wrong, not the recipient: retried later, never suppressed
        assert (refused.outcome, refused.suppress) == ("temporary", False)
        assert refused.reply
        no_auth = await anonymous.send("a@csc.example", "b@example.org", DATA)
        assert (no_auth.outcome, no_auth.suppress) == ("temporary", False)
    finally:
        for p in (good, bad, anonymous):
            await p.close()
        server.close()
    assert store.received == [("a@csc.example", ["b@example.org"])]


async def test_an_address_the_server_cannot_take_is_a_failure_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An internationalised address to a server without SMTPUTF8 (or one that does not
    encode at all) is refused for this delivery, and the pool goes on sending."""
    sink = MailSink(tmp_path, smtp_port=0, web_port=None, rules=FailureRules())
    await sink.start()
    pool = SmtpPool(settings(sink.smtp_port, monkeypatch))
    try:
        odd = await pool.send("a@csc.example", "jos\u00e9@ex\u00e4mple.org", DATA)
        assert (odd.outcome, odd.suppress) == ("permanent", False), odd
        assert "SMTPUTF8" in odd.reply
        ok = await pool.send("a@csc.example", "b@example.org", DATA)
        assert ok.outcome == "sent"
    finally:
        await pool.close()
        await sink.stop()
