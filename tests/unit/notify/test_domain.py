"""notify's rules without I/O: channels, backoff, reply classes, header safety, templates."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest

from notify.domain import (
    Message,
    Recipient,
    backoff,
    classify,
    header_text,
    plan_deliveries,
    stored_link_context,
)
from notify.mail import Renderer
from notify.settings import NotifySettings
from shared.servicekit.seal import SealError

A, B = uuid.uuid4(), uuid.uuid4()


def test_channels_follow_the_kind_and_what_reaches_the_recipient() -> None:
    people = [Recipient(A, "a@example.org"), Recipient(B, None),
              Recipient(None, "Guest@Example.org")]
    got = {(p.recipient, p.channel, p.status) for p in plan_deliveries("group", people, set())}
    assert got == {(str(A), "inbox", "sent"), (str(A), "email", "queued"),
                   (str(B), "inbox", "sent"), ("guest@example.org", "email", "queued")}
    assert {p.channel for p in plan_deliveries("password_reset", people, set())} == {"inbox"}
    assert {p.channel for p in plan_deliveries("password_recovery", people, set())} == {"email"}


def test_suppressed_address_is_planned_suppressed_and_duplicates_collapse() -> None:
    people = [Recipient(A, "a@example.org"), Recipient(A, "a@example.org")]
    planned = plan_deliveries("direct", people, {"a@example.org"})
    assert sorted((p.channel, p.status) for p in planned) == [("email", "suppressed"),
                                                              ("inbox", "sent")]


@pytest.mark.parametrize(("code", "outcome"), [
    (250, "sent"), (451, "temporary"), (421, "temporary"), (None, "temporary"),
    (550, "permanent"), (554, "permanent")])
def test_reply_classes(code: int | None, outcome: str) -> None:
    assert classify(code) == outcome


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    delays = [backoff(n, 30, 3600, rng) for n in range(1, 12)]
    assert timedelta(seconds=15) <= delays[0] <= timedelta(seconds=30)
    assert all(d <= timedelta(seconds=3600) for d in delays)
    assert delays[4] > delays[0]
    assert len({backoff(3, 30, 3600, rng) for _ in range(20)}) > 1  # jitter


def test_header_text_cannot_carry_a_new_header() -> None:
    assert header_text("Hi\r\nBcc: x@evil.example") == "Hi Bcc: x@evil.example"
    assert header_text("a\u2028b\x00c") == "a b c"
    assert header_text("\r\n") == "(no subject)"
    assert len(header_text("x" * 1000)) == 200


def test_a_recovery_email_opens_its_sealed_link_only_when_rendered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSC_ENV", "dev")
    r = Renderer(NotifySettings())
    mid = uuid.uuid4()
    link = "https://portal.example/recover?token=tok_a%20b"
    m = Message(mid, "password_recovery", None, None, "Reset your password",
                "The link in this email chooses a new password.",
                datetime(2026, 3, 2, tzinfo=UTC),
                link=r.seal.seal(link, stored_link_context(mid)))
    assert m.link is not None and "tok_" not in m.link
    raw = r.render(m, delivery_id=1, to="a@example.org", name=None, now=m.created_at)
    msg = message_from_bytes(raw, policy=policy.default)
    html = msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert 'href="https://portal.example/recover?token=tok_a%20b"' in html
    # a row's sealed link does not open as another message's
    other = Message(uuid.uuid4(), "password_recovery", None, None, "s", "b",
                    m.created_at, link=m.link)
    with pytest.raises(SealError):
        r.render(other, delivery_id=2, to="a@example.org", name=None, now=m.created_at)


def test_rendered_email_escapes_html_and_keeps_one_message_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSC_ENV", "dev")
    r = Renderer(NotifySettings())
    m = Message(uuid.uuid4(), "group", None, None, "Hi\nBcc: x@evil.example",
                "<script>x</script>\nline two", datetime(2026, 3, 2, tzinfo=UTC))
    now = datetime(2026, 3, 2, tzinfo=UTC)
    raw = r.render(m, delivery_id=42, to="a@example.org", name="<b>Ann</b>", now=now)
    again = r.render(m, delivery_id=42, to="a@example.org", name="<b>Ann</b>", now=now)
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["Bcc"] is None
    assert msg["Message-ID"] == message_from_bytes(again, policy=policy.default)["Message-ID"]
    assert msg["Message-ID"] == f"<42.{m.id.hex}@notify.csc.example>"
    html = msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "&lt;script&gt;x&lt;/script&gt;<br>" in html and "&lt;b&gt;Ann&lt;/b&gt;" in html
    text = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "<script>x</script>\nline two" in text


def test_non_ascii_subject_and_body_survive_the_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "dev")
    r = Renderer(NotifySettings())
    subject = "Réunion d'information — " * 6 + "\r\nBcc: x@evil.example"
    m = Message(uuid.uuid4(), "direct", None, None, subject, "Ça va? ✓\r\nsecond line",
                datetime(2026, 3, 2, tzinfo=UTC))
    raw = r.render(m, delivery_id=7, to="a@example.org", name="Zoë", now=m.created_at)
    assert raw.isascii() and b"\r\n\r\n" in raw
    assert all(line == b"" or not line.startswith(b"Bcc") for line in raw.split(b"\r\n"))
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["Bcc"] is None
    assert str(msg["Subject"]) == header_text(subject)
    text = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hello Zoë," in text and "Ça va? ✓\nsecond line" in text
