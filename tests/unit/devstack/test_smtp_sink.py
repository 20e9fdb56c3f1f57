"""Tests for the local SMTP sink: real SMTP in, real HTTP out."""

from __future__ import annotations

import socket
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from shared.devstack.smtp_sink import (
    MailSink,
    MessageNotFoundError,
    clear,
    list_messages,
    read_message,
    wait_for,
)


def make_mail(subject: str, body: str = "hello", to: str = "ann@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "noreply@csc.example"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def file_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def send(sink: MailSink, msg: EmailMessage, recipients: list[str] | None = None) -> None:
    await aiosmtplib.send(
        msg,
        hostname="127.0.0.1",
        port=sink.smtp_port,
        recipients=recipients,
        start_tls=False,
        use_tls=False,
        timeout=5,
    )


@pytest.mark.asyncio
async def test_message_is_stored_with_envelope_and_body(tmp_path: Path) -> None:
    async with MailSink(tmp_path, smtp_port=0, web_port=None) as sink:
        assert sink.smtp_port != 0
        await send(
            sink,
            make_mail("Welcome", "Your temporary password is 1234"),
            recipients=["ann@example.org", "bcc@example.org"],
        )
        stored = await wait_for(tmp_path, lambda m: m.subject == "Welcome", timeout=5)
    assert stored.mail_from == "noreply@csc.example"
    assert stored.rcpt_tos == ["ann@example.org", "bcc@example.org"]
    assert stored.to == "ann@example.org"
    msg = read_message(tmp_path, stored.id)
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    assert "temporary password is 1234" in body.get_content()
    assert (tmp_path / f"{stored.id}.eml").is_file()
    assert (tmp_path / f"{stored.id}.json").is_file()
    assert not [n for n in file_names(tmp_path) if n.endswith(".tmp")]


@pytest.mark.asyncio
async def test_messages_are_listed_in_arrival_order(tmp_path: Path) -> None:
    async with MailSink(tmp_path, smtp_port=0, web_port=None) as sink:
        await send(sink, make_mail("first"))
        await send(sink, make_mail("second"))
        await wait_for(tmp_path, lambda m: m.subject == "second")
    assert [m.subject for m in list_messages(tmp_path)] == ["first", "second"]


@pytest.mark.asyncio
async def test_web_api_lists_and_shows_messages(tmp_path: Path) -> None:
    async with MailSink(tmp_path, smtp_port=0, web_port=0) as sink:
        assert sink.web_port not in (None, 0)
        await send(sink, make_mail("one", "body one"))
        await send(sink, make_mail("two", "body two", to="bob@example.org"))
        await wait_for(tmp_path, lambda m: m.subject == "two")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sink.web_port}") as client:
            listing = (await client.get("/api/messages")).json()
            assert [m["subject"] for m in listing] == ["one", "two"]
            resp = await client.get(f"/api/messages/{listing[1]['id']}")
            assert resp.status_code == 200
            detail = resp.json()
            assert detail["to"] == "bob@example.org"
            assert "body two" in detail["text"]
            assert ["Subject", "two"] in detail["headers"]
            page = await client.get(f"/messages/{listing[0]['id']}")
            assert page.status_code == 200
            assert "body one" in page.text
            index = await client.get("/")
            assert index.status_code == 200
            assert "one" in index.text and "two" in index.text


@pytest.mark.asyncio
async def test_html_is_escaped(tmp_path: Path) -> None:
    async with MailSink(tmp_path, smtp_port=0, web_port=0) as sink:
        await send(sink, make_mail("<script>alert(1)</script>", "<b>bold</b> & co"))
        stored = await wait_for(tmp_path, lambda m: "script" in m.subject)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sink.web_port}") as client:
            index = (await client.get("/")).text
            page = (await client.get(f"/messages/{stored.id}")).text
    for text in (index, page):
        assert "<script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page


@pytest.mark.asyncio
async def test_unknown_and_malicious_ids_are_404(tmp_path: Path) -> None:
    (tmp_path / "secret.eml").write_text("Subject: secret\n\nnope\n")
    async with (
        MailSink(tmp_path, smtp_port=0, web_port=0) as sink,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{sink.web_port}") as client,
    ):
        for path in (
            "/api/messages/1700000000000000000-" + "0" * 32,
            "/api/messages/nope",
            "/api/messages/secret",
            "/api/messages/..%2F..%2Fetc",
            "/messages/..%2F..%2Fetc",
            "/messages/secret",
        ):
            resp = await client.get(path)
            assert resp.status_code == 404, path
            assert resp.headers["content-type"].startswith("application/json"), path
    with pytest.raises(MessageNotFoundError):
        read_message(tmp_path, "../../etc/passwd")
    with pytest.raises(MessageNotFoundError):
        read_message(tmp_path, "secret")


@pytest.mark.asyncio
async def test_taken_port_raises_clear_oserror(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"port {port} is already in use"):
            await MailSink(tmp_path, smtp_port=port, web_port=None).start()
        sink = MailSink(tmp_path, smtp_port=0, web_port=port)
        with pytest.raises(OSError, match=f"port {port} is already in use") as info:
            await sink.start()
        assert "\n" not in str(info.value)
    # the SMTP side was released when the web side failed
    assert sink._smtp_server is None


@pytest.mark.asyncio
async def test_messages_survive_restart(tmp_path: Path) -> None:
    async with MailSink(tmp_path, smtp_port=0, web_port=None) as sink:
        await send(sink, make_mail("before restart"))
        await wait_for(tmp_path, lambda m: m.subject == "before restart")
    async with MailSink(tmp_path, smtp_port=0, web_port=0) as sink:
        await send(sink, make_mail("after restart"))
        await wait_for(tmp_path, lambda m: m.subject == "after restart")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sink.web_port}") as client:
            subjects = [m["subject"] for m in (await client.get("/api/messages")).json()]
    assert subjects == ["before restart", "after restart"]


@pytest.mark.asyncio
async def test_clear_empties_the_directory(tmp_path: Path) -> None:
    async with MailSink(tmp_path, smtp_port=0, web_port=0) as sink:
        for subject in ("a", "b", "c"):
            await send(sink, make_mail(subject))
        await wait_for(tmp_path, lambda m: m.subject == "c")
        assert clear(tmp_path) == 3
        assert list_messages(tmp_path) == []
        await send(sink, make_mail("d"))
        await wait_for(tmp_path, lambda m: m.subject == "d")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sink.web_port}") as client:
            assert (await client.delete("/api/messages")).json() == {"deleted": 1}
            assert (await client.get("/api/messages")).json() == []
    assert file_names(tmp_path) == []


@pytest.mark.asyncio
async def test_wait_for_times_out(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError):
        await wait_for(tmp_path, lambda m: True, timeout=0.1)
