"""The SMTP pool against a real SMTP server (the devstack sink)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    assert len(list_messages(tmp_path)) == 2
