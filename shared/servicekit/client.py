"""A small base for one service calling another over HTTP.

One pooled httpx client per callee for the life of the process, a short timeout
(a person is usually waiting), the caller's request id sent along, and the
callee's RFC 9457 problems read back. Bodies may hold an SSN: they are never
logged, and no error raised here repeats one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import BaseModel, ValidationError

from shared.servicekit.errors import DomainError, FieldError
from shared.servicekit.http import REQUEST_ID_HEADER
from shared.servicekit.logs import correlation_id, redact

log = structlog.get_logger(__name__)
M = TypeVar("M", bound=BaseModel)


class ServiceUnavailable(DomainError):
    """The callee did not answer, answered 5xx, or answered something we cannot read."""


class ServiceClient:
    """Calls to one service. ``unavailable`` is the error its failures raise."""

    def __init__(
        self, name: str, base_url: str, *, timeout: float, max_connections: int = 50,
        unavailable: type[ServiceUnavailable] = ServiceUnavailable,
        transport: httpx.AsyncBaseTransport | None = None, auth: httpx.Auth | None = None,
    ) -> None:
        # auth: shared.servicekit.delegation.NarrowedBearer narrows the caller's token to
        # the callee, so the callee cannot replay it against a third service
        self.name, self.unavailable = name, unavailable
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(timeout), transport=transport, auth=auth,
            # kept alive for less than the callee's 5 s (uvicorn's): a connection is
            # dropped here before the callee closes it under a request
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections,
                                keepalive_expiry=4.0),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def post(
        self, path: str, body: BaseModel | Mapping[str, Any], *, token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The answer, whatever its status below 500; ``unavailable`` otherwise."""
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        rid = correlation_id.get()
        if rid:
            sent[REQUEST_ID_HEADER] = rid
        payload = (body.model_dump(mode="json", exclude_none=True)
                   if isinstance(body, BaseModel) else dict(body))
        try:
            response = await self.http.post(path, json=payload, headers=sent)
        except httpx.TimeoutException:
            log.warning(f"{self.name}_timeout", path=path)
            raise self.unavailable(f"{self.name} did not answer in time") from None
        except httpx.HTTPError as exc:
            log.warning(f"{self.name}_unreachable", path=path, error=type(exc).__name__)
            raise self.unavailable(f"{self.name} is unreachable") from None
        if response.status_code >= 500:
            log.warning(f"{self.name}_error", path=path, status=response.status_code)
            raise self.unavailable(f"{self.name} answered {response.status_code}")
        return response

    def read(self, model: type[M], response: httpx.Response, what: str = "an answer") -> M:
        """The answer as ``model``; ``unavailable`` when it is not one."""
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            raise self.unavailable(f"{self.name} gave {what} we cannot read") from None


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def problem_detail(response: httpx.Response) -> str | None:
    """The problem's ``detail`` (masked), if the answer is a problem with one."""
    body = json_of(response)
    detail = body.get("detail") if isinstance(body, dict) else None
    return redact(detail) if isinstance(detail, str) else None


def problem_type(response: httpx.Response) -> str:
    body = json_of(response)
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else ""


def problem_field_errors(
    response: httpx.Response, rename: Mapping[str, str] | None = None
) -> list[FieldError]:
    """A 422 problem's ``errors`` as FieldErrors (field names renamed by their first part)."""
    body = json_of(response)
    errors = body.get("errors") if isinstance(body, dict) else None
    out = []
    for e in errors if isinstance(errors, list) else []:
        if isinstance(e, dict) and isinstance(e.get("field"), str):
            name: str = e["field"]
            mapped = (rename or {}).get(name.split(".", 1)[0], name)
            out.append(FieldError(redact(mapped), redact(str(e.get("reason", "is not valid")))))
    return out
