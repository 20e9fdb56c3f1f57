"""identity's HTTP API as Add Customer uses it (a person is waiting, so it is a
synchronous call with a short timeout, made with the staff member's own token).

Bodies may hold an SSN: they are never logged, and no error here repeats one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from enrollment.domain import Conflict, DomainError, FieldError, Forbidden, InvalidInput
from shared.servicekit.logs import correlation_id, redact

log = structlog.get_logger(__name__)

class IdentityUnavailable(DomainError):
    """identity did not answer, answered 5xx, or answered something we cannot read."""


class IdentityUnauthorized(DomainError):
    """identity refused the staff member's token (it expired meanwhile, or was revoked)."""


@dataclass(frozen=True)
class Candidate:
    """An existing account that may be the person (the SSN as its last four only)."""

    account_id: uuid.UUID
    username: str | None
    first_name: str | None
    last_name: str | None
    date_of_birth: str | None
    ssn_last4: str | None
    score: float | None
    band: str | None
    evidence: tuple[dict[str, Any], ...] = field(default=())

    @classmethod
    def parse(cls, raw: Any) -> Candidate:
        if not isinstance(raw, dict):
            raise ValueError("a candidate is not an object")
        ident = raw.get("account_id") or raw.get("id")
        evidence = raw.get("evidence") or []
        return cls(
            account_id=uuid.UUID(str(ident)),
            username=_text(raw.get("username")),
            first_name=_text(raw.get("first_name")),
            last_name=_text(raw.get("last_name")),
            date_of_birth=_text(raw.get("date_of_birth")),
            ssn_last4=_last4(raw.get("ssn_last4")),
            score=float(raw["score"]) if isinstance(raw.get("score"), int | float) else None,
            band=_text(raw.get("band")),
            evidence=tuple(
                {"field": _text(e.get("field")), "outcome": _text(e.get("outcome")),
                 "weight": e.get("weight") if isinstance(e.get("weight"), int | float) else None}
                for e in evidence if isinstance(e, dict)
            ),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": str(self.account_id), "username": self.username,
            "first_name": self.first_name, "last_name": self.last_name,
            "date_of_birth": self.date_of_birth, "ssn_last4": self.ssn_last4,
            "score": self.score, "band": self.band, "evidence": list(self.evidence),
        }


def _text(value: Any) -> str | None:
    return redact(value) if isinstance(value, str) else None


def _last4(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) == 4 and value.isdigit() else None


@dataclass(frozen=True)
class CreatedAccount:
    id: uuid.UUID
    username: str
    temporary_password: str = field(repr=False)
    password_expires_at: str | None


# identity's field names for what the form calls otherwise
_FIELD_NAMES = {"identifiers": "idoc_number"}


def _field_errors(body: Any) -> list[FieldError]:
    errors = body.get("errors") if isinstance(body, dict) else None
    out = []
    for e in errors if isinstance(errors, list) else []:
        if isinstance(e, dict) and isinstance(e.get("field"), str):
            name: str = e["field"]
            mapped: str = _FIELD_NAMES.get(name.split(".", 1)[0], name)
            out.append(FieldError(redact(mapped), redact(str(e.get("reason", "is not valid")))))
    return out or [FieldError("body", "identity refused the request")]


class IdentityClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _post(
        self, path: str, token: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {token}", **(headers or {})}
        rid = correlation_id.get()
        if rid:
            sent["X-Request-ID"] = rid
        try:
            response = await self.http.post(path, json=body, headers=sent)
        except httpx.TimeoutException:
            log.warning("identity_timeout", path=path)
            raise IdentityUnavailable("identity did not answer in time") from None
        except httpx.HTTPError as exc:
            log.warning("identity_unreachable", path=path, error=type(exc).__name__)
            raise IdentityUnavailable("identity is unreachable") from None
        if response.status_code >= 500:
            log.warning("identity_error", path=path, status=response.status_code)
            raise IdentityUnavailable(f"identity answered {response.status_code}")
        if response.status_code == 401:
            raise IdentityUnauthorized("identity refused the token")
        if response.status_code == 403:
            raise Forbidden(_detail(response) or "identity refused the request")
        return response

    async def match(self, token: str, query: dict[str, Any]) -> list[Candidate]:
        r = await self._post("/v1/matches", token, query)
        if r.status_code == 422:
            raise InvalidInput(_field_errors(_json(r)))
        if r.status_code != 200:
            raise IdentityUnavailable(f"identity's matcher answered {r.status_code}")
        body = _json(r)
        try:
            return [Candidate.parse(c) for c in body["candidates"]]
        except (KeyError, TypeError, ValueError):
            raise IdentityUnavailable("identity's matcher gave an answer we cannot read") from None

    async def create_customer(
        self, token: str, body: dict[str, Any], idempotency_key: str | None
    ) -> CreatedAccount:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        r = await self._post("/v1/customers", token, body, headers)
        answer = _json(r)
        if r.status_code == 409 and isinstance(answer, dict) and "candidates" in answer:
            try:
                candidates = [Candidate.parse(c) for c in answer["candidates"]]
            except (TypeError, ValueError):
                candidates = []
            raise Conflict("possible-duplicates", "identity found accounts that may be this "
                           "person: link one, or reject each", candidates=candidates)
        if r.status_code == 409:
            raise Conflict("conflict", _detail(r) or "identity refused to create the account")
        if r.status_code == 422:
            if isinstance(answer, dict) and str(answer.get("type", "")).endswith(
                    "idempotency-key-reused"):
                raise Conflict("idempotency-key-reused",
                               "this Idempotency-Key was used for a different request")
            raise InvalidInput(_field_errors(answer))
        if r.status_code not in (200, 201):
            raise IdentityUnavailable(f"identity answered {r.status_code} to a new account")
        try:
            return CreatedAccount(
                uuid.UUID(answer["id"]), str(answer["username"]),
                str(answer["temporary_password"]), answer.get("password_expires_at"),
            )
        except (KeyError, TypeError, ValueError):
            raise IdentityUnavailable("identity gave an answer we cannot read") from None

    async def confirm_match(
        self, token: str, account_id: uuid.UUID, rejected: list[uuid.UUID]
    ) -> None:
        r = await self._post("/v1/matches/confirmations", token, {
            "account_id": str(account_id), "rejected_account_ids": [str(a) for a in rejected]})
        if r.status_code in (404, 409, 422):
            raise InvalidInput([FieldError(
                "link_account_id", "is not an account identity can confirm for this person")])
        if r.status_code not in (200, 201, 204):
            raise IdentityUnavailable(f"identity answered {r.status_code} to the confirmation")


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def _detail(r: httpx.Response) -> str | None:
    body = _json(r)
    detail = body.get("detail") if isinstance(body, dict) else None
    return redact(detail) if isinstance(detail, str) else None
