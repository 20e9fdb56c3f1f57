"""The gateway's rules, free of FastAPI and asyncpg: sealing, sessions, which calls
are rate-limited, and the Add Customer form's fields and labels."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SESSION_COOKIE = "csc_session"
ANON_CSRF_COOKIE = "csc_csrf"


class Sealer:
    """AES-256-GCM with a random nonce per value; the nonce leads the sealed bytes."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the data key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)

    @classmethod
    def from_text(cls, text: str) -> Sealer:
        return cls(base64.b64decode(text, validate=True))

    def seal(self, plain: bytes, context: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plain, context)

    def open(self, sealed: bytes, context: bytes = b"") -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], context)

    def seal_json(self, value: Any, context: bytes = b"") -> bytes:
        return self.seal(json.dumps(value).encode(), context)

    def open_json(self, sealed: bytes, context: bytes = b"") -> Any:
        return json.loads(self.open(sealed, context))


def new_cookie() -> tuple[str, bytes]:
    """A session cookie value and the hash the table keeps."""
    value = secrets.token_urlsafe(32)
    return value, cookie_hash(value)


def cookie_hash(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


@dataclass(frozen=True)
class PageSession:
    id: uuid.UUID
    account_id: uuid.UUID
    kind: str
    username: str
    display_name: str
    roles: tuple[str, ...]
    password_change_required: bool
    access_token: str
    refresh_token: str | None
    access_expires_at: datetime
    csrf_token: str
    notice: str | None

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def who(self) -> str:
        return f"{self.display_name} ({self.username})" if self.display_name else self.username


# -- the proxy ---------------------------------------------------------------------

# hop-by-hop headers never cross a proxy (RFC 9110 7.6.1), nor the browser's cookies
HOP_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "host", "content-length", "cookie",
})

# (service, path pattern): the anonymous doors, limited per client address
_LIMITED = (
    ("identity", re.compile(r"v1/auth/token")),
    ("identity", re.compile(r"v1/registrations")),
    ("identity", re.compile(r"v1/password-recovery(/complete)?")),
    ("groups", re.compile(r"v1/(groups/[^/]+/)?join.*")),
)


def limited_scope(service: str, path: str, method: str) -> str | None:
    """The rate-limit scope of a call through the proxy, or None when it is not limited."""
    if method.upper() != "POST":
        return None
    for name, pattern in _LIMITED:
        if name == service and pattern.fullmatch(path.strip("/")):
            return f"gateway:{service}:{path.strip('/').split('/')[1]}"
    return None


# -- the Add Customer form -------------------------------------------------------------

# API field -> (form input id, visible label); labels are the seed's, exactly
ADD_CUSTOMER_FIELDS: dict[str, tuple[str, str]] = {
    "parent_institution": ("parent_institution", "Parent Institution"),
    "idoc_number": ("idoc_number", "IDOC Number"),
    "idoc_number_confirmation": ("idoc_number_confirmation", "Confirm IDOC Number"),
    "first_name": ("first_name", "First Name"),
    "last_name": ("last_name", "Last Name"),
    "ssn": ("ssn", "Social Security Number (Format: XXX-XX-XXXX)"),
    "ssn_confirmation": ("ssn_confirmation", "Social Security Number (Format: XXX-XX-XXXX)"),
    "date_of_birth": ("date_of_birth", "Date of Birth"),
    "counties_of_commitment": ("counties_of_commitment", "County of Commitment"),
    "msr_date": ("msr_date", "Mandatory Supervised Release Date"),
    "msr_county": ("msr_county", "County of MSR"),
    "offenses": ("offenses", "Offenses"),
    "enrollment_date": ("enrollment_date", "Enrollment Date"),
}

_TEXT = ("parent_institution", "idoc_number", "idoc_number_confirmation", "first_name",
         "last_name", "ssn", "ssn_confirmation", "date_of_birth", "msr_date", "msr_county",
         "enrollment_date")
_LISTS = ("counties_of_commitment", "offenses")


def add_customer_body(form: dict[str, Any]) -> dict[str, Any]:
    """The enrollment API body from the posted form (lists from multi-selects);
    empty optional fields are left out so the API says what is missing."""
    body: dict[str, Any] = {}
    for name in _TEXT:
        value = str(form.get(name) or "").strip()
        if value:
            body[name] = value
    for name in _LISTS:
        raw = form.get(name) or []
        values = [raw] if isinstance(raw, str) else list(raw)
        body[name] = [str(v) for v in values if str(v).strip()]
    return body


def form_echo(body: dict[str, Any]) -> dict[str, Any]:
    """What the form may show again after an error: everything but the SSN."""
    return {k: v for k, v in body.items() if k not in ("ssn", "ssn_confirmation")}


@dataclass(frozen=True)
class FieldProblem:
    field: str       # the input's id (the summary links to it)
    label: str
    message: str


def field_problems(problem: dict[str, Any], fields: dict[str, tuple[str, str]]
                   ) -> list[FieldProblem]:
    """A 422 problem's field list as the page's error summary shows it."""
    out: list[FieldProblem] = []
    for err in problem.get("errors") or []:
        if not isinstance(err, dict):
            continue
        name = str(err.get("field") or "").split(".")[0].split("[")[0]
        reason = str(err.get("reason") or err.get("message") or "is not valid")
        input_id, label = fields.get(name, (name or "form", name.replace("_", " ").capitalize()
                                            or "Form"))
        for other, (_, other_label) in fields.items():  # "must equal idoc_number"
            reason = re.sub(rf"\b{other}\b", other_label, reason)
        out.append(FieldProblem(input_id, label, f"{label} {reason}"))
    return out
