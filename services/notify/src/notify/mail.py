"""Email: the templates that turn a message into MIME, and a small pool of SMTP
connections with a cap on concurrency and a rate limit."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal

import aiosmtplib
import structlog
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape
from markupsafe import Markup, escape

from notify.domain import Message, classify, header_text, short_reply, stored_link_context
from notify.settings import NotifySettings
from shared.servicekit.seal import Sealer

log = structlog.get_logger(__name__)
TEMPLATES = Path(__file__).parent / "templates"


def _nl2br(text: str) -> Markup:
    return Markup("<br>\n").join(escape(line) for line in str(text).split("\n"))


class Renderer:
    """One Jinja2 environment, autoescaping HTML; one template pair per message kind."""

    def __init__(self, s: NotifySettings, seal: Sealer | None = None) -> None:
        self.s = s
        # opens the recovery links notify keeps sealed in its message rows
        self.seal = seal or Sealer.from_spec(s.seal_keys_spec)
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined, keep_trailing_newline=True,
            # the templates ship with the code: no stat() of both files per email
            auto_reload=False,
        )
        self.env.filters["nl2br"] = _nl2br
        self._templates: dict[str, Template] = {}

    def _template(self, name: str) -> Template:
        t = self._templates.get(name)
        if t is None:
            t = self._templates[name] = self.env.get_template(name)
        return t

    def message_id(self, delivery_id: int, m: Message) -> str:
        """Stable per delivery: a retry carries the same Message-ID (receivers can dedup)."""
        return f"<{delivery_id}.{m.id.hex}@{self.s.message_id_domain}>"

    def link(self, m: Message) -> str:
        """The message's link; a recovery link is kept sealed and opened only here."""
        if m.kind == "password_recovery" and m.link:
            return self.seal.open(m.link, stored_link_context(m.id))
        return m.link or ""

    def render(
        self, m: Message, *, delivery_id: int, to: str, name: str | None, now: datetime,
    ) -> bytes:
        ctx: dict[str, Any] = {
            "subject": header_text(m.subject), "body": m.body, "name": name,
            "link": self.link(m), "portal_name": self.s.portal_name,
            "portal_url": self.s.portal_url,
            "expires": m.expires_at.strftime("%B %d, %Y %H:%M UTC") if m.expires_at else "",
        }
        text = self._template(f"{m.kind}.txt").render(ctx)
        html = self._template(f"{m.kind}.html").render(ctx)
        return build_mime(
            sender=f"{_encode_header(header_text(self.s.portal_name))} <{self.s.mail_from}>",
            to=header_text(to, 320), subject=_encode_header(header_text(m.subject)),
            date=format_datetime(now), message_id=self.message_id(delivery_id, m),
            text=text, html=html, boundary=f"=_{m.id.hex}_{delivery_id}",
        )


def _encode_header(value: str) -> str:
    """ASCII as is; anything else as an RFC 2047 encoded word (the value has no CR/LF)."""
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")


def _b64(text: str) -> bytes:
    return base64.encodebytes(text.replace("\r\n", "\n").encode("utf-8")).replace(
        b"\n", b"\r\n")


def build_mime(*, sender: str, to: str, subject: str, date: str, message_id: str,
               text: str, html: str, boundary: str) -> bytes:
    """A multipart/alternative message (plain text, then HTML), both parts base64.

    Built by hand: the email package's generator costs ~10 ms a message, which alone
    would cap a worker far below the rate it must send at. Every header value passed
    in is already one line (``header_text``)."""
    head = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
        f"Message-ID: {message_id}\r\nAuto-Submitted: auto-generated\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
    ).encode("ascii")
    part = (f"--{boundary}\r\nContent-Type: text/%s; charset=\"utf-8\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n")
    return b"".join((
        head, (part % "plain").encode(), _b64(text), (part % "html").encode(), _b64(html),
        f"--{boundary}--\r\n".encode(),
    ))


# an address as notify sends to (ASCII, no quoting, no angle brackets or spaces)
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,255}")


async def _transaction(client: aiosmtplib.SMTP, sender: str, recipient: str, data: bytes
                       ) -> str:
    """One email on an open connection: MAIL, RCPT, DATA; the server's last reply.

    For plain ASCII addresses (all of notify's, as the directory keeps them) the three
    commands go straight out: aiosmtplib's ``sendmail`` parses each address four times
    with the ``email`` package, a tenth of the client's CPU per email. Anything else
    takes ``sendmail``. Errors are aiosmtplib's own, and the envelope is reset after a
    refusal as ``sendmail`` does, so the connection can be used again."""
    if not (_PLAIN_ADDRESS.fullmatch(sender) and _PLAIN_ADDRESS.fullmatch(recipient)):
        _, reply = await client.sendmail(sender, [recipient], data)
        return reply
    await client._ehlo_or_helo_if_needed()
    try:
        r = await client.execute_command(b"MAIL", b"FROM:<%s>" % sender.encode())
        if r.code != 250:
            raise aiosmtplib.SMTPSenderRefused(r.code, r.message, sender)
        r = await client.execute_command(b"RCPT", b"TO:<%s>" % recipient.encode())
        if r.code not in (250, 251):
            raise aiosmtplib.SMTPRecipientRefused(r.code, r.message, recipient)
        return (await client.data(data)).message
    except aiosmtplib.SMTPResponseException:
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPException):
            await client.rset()
        raise


@dataclass(frozen=True)
class SendResult:
    outcome: Literal["sent", "temporary", "permanent"]
    reply: str
    # a permanent refusal of the address itself (RCPT or DATA 5xx): suppress it
    suppress: bool = False


class RateLimiter:
    """At most ``rate`` acquisitions per second (a token bucket of one second)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now - 1.0)  # bursts of up to one second's worth
            self._next += 1.0 / self.rate
            delay = self._next - 1.0 - now
        if delay > 0:
            await asyncio.sleep(delay)


class SmtpPool:
    """Up to ``smtp_pool_size`` open connections; one email at a time on each."""

    def __init__(self, s: NotifySettings) -> None:
        self.s = s
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(s.smtp_pool_size)
        self._limiter = RateLimiter(s.smtp_rate_per_second)
        self._closed = False

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.s
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host, port=s.smtp_port, timeout=s.smtp_timeout_seconds,
            use_tls=s.smtp_use_tls, start_tls=s.smtp_starttls if not s.smtp_use_tls else False,
            tls_context=ssl.create_default_context() if s.smtp_use_tls or s.smtp_starttls
            else None,
        )
        await client.connect()
        if s.smtp_username:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            await client.login(s.smtp_username, password)
        return client

    async def send(self, sender: str, recipient: str, data: bytes) -> SendResult:
        async with self._slots:
            await self._limiter.wait()
            client = self._idle.pop() if self._idle else None
            keep = False  # a connection goes back to the pool only after a clean answer
            try:
                if client is not None and client.is_connected:
                    try:
                        reply = await _transaction(client, sender, recipient, data)
                    except aiosmtplib.SMTPServerDisconnected:
                        # an idle connection the server has since closed: once more on a
                        # fresh one (at worst, if it had taken the data, a copy more)
                        client.close()
                        client = await self._connect()
                        reply = await _transaction(client, sender, recipient, data)
                else:
                    client = await self._connect()
                    reply = await _transaction(client, sender, recipient, data)
                keep = True
                return SendResult("sent", short_reply(f"250 {reply}"))
            except aiosmtplib.SMTPRecipientsRefused as exc:
                keep = True  # aiosmtplib reset the envelope
                refused = exc.recipients[0]
                return self._refused(refused.code, refused.message, address=True)
            except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
                keep = True
                return self._refused(exc.code, exc.message, address=True)
            except aiosmtplib.SMTPResponseException as exc:
                # MAIL FROM, HELO, AUTH, connect: the server's or our setup's problem,
                # not the recipient's: never suppress an address for it, try again later
                return SendResult("temporary", short_reply(f"{exc.code} {exc.message}"))
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                return SendResult("temporary", short_reply(f"{type(exc).__name__}: {exc}"))
            except UnicodeError:
                # an address with characters the server cannot take (no SMTPUTF8): no
                # retry will change that; the delivery fails, the address is not
                # suppressed (another server may take it), the connection is reset
                return SendResult("permanent", "address not deliverable: characters"
                                  " outside ASCII and the server lacks SMTPUTF8")
            finally:
                if client is not None:
                    if keep and client.is_connected and not self._closed:
                        self._idle.append(client)
                    else:
                        client.close()

    @staticmethod
    def _refused(code: int, message: str, *, address: bool) -> SendResult:
        reply = short_reply(f"{code} {message}")
        if classify(code) == "permanent":
            return SendResult("permanent", reply, suppress=address)
        return SendResult("temporary", reply)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.quit(), 2)
            client.close()
