"""Rules of the groups service, without I/O: codes and passcodes, the depth limit,
what the IWDS feed places a customer in, who reaches a customer and why, message
limits and recipient chunks, invitation states and the join throttle."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from shared.servicekit.errors import FieldError, InvalidInput

Kind = Literal["personal", "lwia", "program"]
Source = Literal["passcode", "invitation", "staff", "iwds", "program"]
InvitationStatus = Literal["pending", "accepted", "declined", "expired", "revoked"]

MAX_DEPTH = 8
SUBJECT_MAX = 200
BODY_MAX = 20_000
JOIN_THROTTLE_LIMIT = 5
JOIN_THROTTLE_WINDOW = timedelta(minutes=15)
ADMIN_ROLE = "admin"

# no 0/O, 1/I/l: read aloud and typed from paper
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_PASSCODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_JOIN_CODE = re.compile(r"[a-z0-9]{6,32}")


def new_join_code() -> str:
    """The last part of a group's web address."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(10))


def new_passcode() -> str:
    return "".join(secrets.choice(_PASSCODE_ALPHABET) for _ in range(8))


def normalize_passcode(value: str) -> str:
    return re.sub(r"[\s-]", "", value).upper()


def passcode_matches(stored: str | None, given: str) -> bool:
    if stored is None:
        return False
    return hmac.compare_digest(stored.encode(), normalize_passcode(given).encode())


def valid_join_code(value: str) -> bool:
    return _JOIN_CODE.fullmatch(value) is not None


def child_depth(parent_depth: int) -> int:
    """The depth of a new subgroup; InvalidInput past the limit."""
    if parent_depth + 1 > MAX_DEPTH:
        raise InvalidInput([FieldError(
            "parent_id", f"subgroups nest at most {MAX_DEPTH} levels deep")])
    return parent_depth + 1


# -- the IWDS feed -------------------------------------------------------------------

@dataclass(frozen=True)
class FeedGroup:
    """One group the IWDS feed places a customer in (keyed so it is made once)."""

    key: str
    parent_key: str | None
    name: str
    lwia_code: str
    office_code: str | None = None
    caseload_of: str | None = None


@dataclass(frozen=True)
class Placement:
    lwia_code: str
    office_code: str | None
    case_manager: str | None


def feed_groups(placement: Placement) -> list[FeedGroup]:
    """The LWIA group, its office subgroup and the case manager's caseload subgroup
    (under the office when there is one), root first."""
    lwia = placement.lwia_code
    root = FeedGroup(f"lwia:{lwia}", None, f"LWIA {lwia}", lwia)
    out = [root]
    parent = root
    if placement.office_code:
        office = FeedGroup(f"office:{lwia}/{placement.office_code}", root.key,
                           f"LWIA {lwia} office {placement.office_code}", lwia,
                           placement.office_code)
        out.append(office)
        parent = office
    if placement.case_manager:
        out.append(FeedGroup(
            f"caseload:{lwia}/{placement.office_code or ''}/{placement.case_manager}",
            parent.key, f"LWIA {lwia} caseload {placement.case_manager}", lwia,
            placement.office_code, placement.case_manager))
    return out


def feed_keys(placements: Iterable[Placement]) -> dict[str, FeedGroup]:
    out: dict[str, FeedGroup] = {}
    for p in placements:
        for g in feed_groups(p):
            out[g.key] = g
    return out


def program_key(program: str) -> str:
    return f"program:{program}"


# -- who reaches a customer --------------------------------------------------------

@dataclass(frozen=True)
class Path:
    """One way a staff member reaches a customer (the "why can I see this?" answer)."""

    group_id: UUID | None
    kind: str
    name: str
    reason: str


ADMIN_PATH = Path(None, "admin", "all customers", "admin role: reaches every customer")


def grant_reason(level: str, lwia: str | None, office: str | None) -> str:
    if level == "statewide":
        return "IWDS access: statewide"
    if level == "lwia":
        return f"IWDS access: LWIA {lwia}"
    if level == "office":
        return f"IWDS access: LWIA {lwia} office {office}"
    return "IWDS access: own caseload"


# -- messages --------------------------------------------------------------------

def check_message(subject: str, body: str) -> tuple[str, str]:
    errors = []
    subject = subject.strip()
    if not subject:
        errors.append(FieldError("subject", "must not be empty"))
    elif len(subject) > SUBJECT_MAX:
        errors.append(FieldError("subject", f"must be at most {SUBJECT_MAX} characters"))
    elif any(c in subject for c in "\r\n"):
        errors.append(FieldError("subject", "must be one line"))
    if not body.strip():
        errors.append(FieldError("body", "must not be empty"))
    elif len(body) > BODY_MAX:
        errors.append(FieldError("body", f"must be at most {BODY_MAX} characters"))
    if errors:
        raise InvalidInput(errors)
    return subject, body


def chunk_count(recipients: int, chunk_size: int) -> int:
    return max(1, -(-recipients // chunk_size))


def chunks(ids: Sequence[UUID], size: int) -> list[list[UUID]]:
    return [list(ids[i:i + size]) for i in range(0, len(ids), size)]


# -- invitations ------------------------------------------------------------------

def invitation_status(status: str, expires_at: datetime, now: datetime) -> str:
    """A pending invitation past its expiry reads as expired."""
    if status == "pending" and expires_at <= now:
        return "expired"
    return status


def normalize_email(email: str) -> str:
    return email.strip().lower()


def throttle_retry_after(failures: Sequence[datetime], now: datetime) -> int | None:
    """Seconds until another try may pass, or None when under the limit."""
    recent = sorted(t for t in failures if now - t < JOIN_THROTTLE_WINDOW)
    if len(recent) < JOIN_THROTTLE_LIMIT:
        return None
    oldest = recent[-JOIN_THROTTLE_LIMIT]
    return max(1, int((oldest + JOIN_THROTTLE_WINDOW - now).total_seconds()) + 1)
