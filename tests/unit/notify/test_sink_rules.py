"""The SMTP sink refuses (550) or defers (451) chosen addresses, over real SMTP."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from shared.devstack.smtp_sink import FailureRules, MailSink, list_messages


def mail(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "noreply@csc.example", to, "hi"
    msg.set_content("hello")
    return msg


async def send(sink: MailSink, to: str) -> None:
    await aiosmtplib.send(mail(to), hostname="127.0.0.1", port=sink.smtp_port, timeout=5)


async def test_refused_and_deferred_addresses(tmp_path: Path) -> None:
    rules = FailureRules(refuse=("*@bounce.example",), defer=("slow@example.org",),
                         defer_times=2)
    async with MailSink(tmp_path, smtp_port=0, web_port=None, rules=rules) as sink:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await send(sink, "Gone@Bounce.example")
        assert refused.value.recipients[0].code == 550
        for _ in range(2):
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as deferred:
                await send(sink, "slow@example.org")
            assert deferred.value.recipients[0].code == 451
        await send(sink, "slow@example.org")  # the third try is accepted
        await send(sink, "ok@example.org")
    assert sorted(r for m in list_messages(tmp_path) for r in m.rcpt_tos) == [
        "ok@example.org", "slow@example.org"]


def test_rules_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_SMTP_SINK_REFUSE", " a@x.example, *@y.example ")
    monkeypatch.setenv("CSC_SMTP_SINK_DEFER", "b@x.example")
    monkeypatch.setenv("CSC_SMTP_SINK_DEFER_TIMES", "1")
    rules = FailureRules.from_env()
    assert (rules.answer("A@x.example") or "")[:3] == "550"
    assert (rules.answer("z@y.example") or "")[:3] == "550"
    assert (rules.answer("b@x.example") or "")[:3] == "451"
    assert rules.answer("b@x.example") is None  # deferred once only
    assert rules.answer("c@x.example") is None
