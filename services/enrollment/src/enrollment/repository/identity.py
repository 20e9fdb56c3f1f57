"""identity's HTTP API as Add Customer uses it (a person is waiting, so it is a
synchronous call with a short timeout, made with the staff member's own token).
The request and answer models are identity's own (shared.contracts.identity).

Bodies may hold an SSN: they are never logged, and no error here repeats one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from enrollment.domain.programs import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    PossibleDuplicates,
)
from shared.contracts.identity import (
    Candidate,
    CreatedCustomer,
    CustomerCreate,
    MatchAnswer,
    MatchConfirmation,
    MatchQuery,
    PossibleDuplicatesProblem,
)
from shared.servicekit.client import (
    ServiceClient,
    ServiceUnavailable,
    problem_detail,
    problem_field_errors,
    problem_type,
)
from shared.servicekit.errors import TooManyRequests

__all__ = ["Candidate", "CreatedCustomer", "IdentityClient", "IdentityOutcomeUnknown",
           "IdentityUnauthorized", "IdentityUnavailable"]


class IdentityUnavailable(ServiceUnavailable):
    """identity did not answer, answered 5xx, or answered something we cannot read."""


class IdentityOutcomeUnknown(IdentityUnavailable):
    """identity was asked to act (make the account, record the match) and its answer
    never came: it may have done it. A retry with the same Idempotency-Key finishes it."""

    def __init__(self, cause: str, done: str) -> None:
        self.cause, self.done = cause, done
        super().__init__(cause)


class IdentityUnauthorized(DomainError):
    """identity refused the staff member's token (it expired meanwhile, or was revoked)."""


# identity's field names for what the form calls otherwise
_FIELD_NAMES = {"identifiers": "idoc_number"}


def _field_errors(r: httpx.Response) -> list[FieldError]:
    return (problem_field_errors(r, _FIELD_NAMES)
            or [FieldError("body", "identity refused the request")])


def _retry_after(r: httpx.Response) -> int:
    try:
        return max(1, int(r.headers.get("retry-after", "60")))
    except ValueError:
        return 60


class IdentityClient:
    def __init__(self, base_url: str, *, timeout: float, max_connections: int = 50,
                 transport: httpx.AsyncBaseTransport | None = None,
                 auth: httpx.Auth | None = None) -> None:
        self.calls = ServiceClient("identity", base_url, timeout=timeout,
                                   max_connections=max_connections,
                                   unavailable=IdentityUnavailable, transport=transport,
                                   auth=auth)

    async def aclose(self) -> None:
        await self.calls.aclose()

    async def _post(self, path: str, token: str, body: MatchQuery | CustomerCreate
                    | MatchConfirmation, headers: dict[str, str] | None = None
                    ) -> httpx.Response:
        response = await self.calls.post(path, body, token=token, headers=headers)
        if response.status_code == 401:
            raise IdentityUnauthorized("identity refused the token")
        if response.status_code == 403:
            raise Forbidden(problem_detail(response) or "identity refused the request")
        return response

    async def match(self, token: str, query: MatchQuery | Mapping[str, Any]) -> list[Candidate]:
        """identity's candidates for the person (the query is checked against its model)."""
        r = await self._post("/v1/matches", token, MatchQuery.model_validate(query))
        if r.status_code == 422:
            raise InvalidInput(_field_errors(r))
        if r.status_code == 429:  # the staff member's own match limit (identity counts it)
            raise TooManyRequests(
                problem_detail(r) or "too many searches for people", retry_after=_retry_after(r))
        if r.status_code != 200:
            raise IdentityUnavailable(f"identity's matcher answered {r.status_code}")
        return self.calls.read(MatchAnswer, r, "its matcher an answer").candidates

    async def create_customer(
        self, token: str, body: CustomerCreate, idempotency_key: str | None
    ) -> CreatedCustomer:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        r = await self._post("/v1/customers", token, body, headers)
        if r.status_code == 409 and problem_type(r).endswith("possible-duplicates"):
            try:
                candidates = PossibleDuplicatesProblem.model_validate_json(r.content).candidates
            except ValueError:
                candidates = []
            raise PossibleDuplicates("identity found accounts that may be this "
                                     "person: link one, or reject each", candidates)
        if r.status_code == 409:
            raise Conflict(None, problem_detail(r) or "identity refused to create the account",
                           code="conflict")
        if r.status_code == 429:  # its candidates count against the staff's match limit
            raise TooManyRequests(
                problem_detail(r) or "too many searches for people", retry_after=_retry_after(r))
        if r.status_code == 422:
            if problem_type(r).endswith("idempotency-key-reused"):
                raise IdempotencyKeyReused()
            raise InvalidInput(_field_errors(r))
        if r.status_code not in (200, 201):
            raise IdentityUnavailable(f"identity answered {r.status_code} to a new account")
        return self.calls.read(CreatedCustomer, r)

    async def confirm_match(
        self, token: str, account_id: uuid.UUID, rejected: list[uuid.UUID]
    ) -> None:
        r = await self._post("/v1/matches/confirmations", token, MatchConfirmation(
            account_id=account_id, rejected_account_ids=rejected))
        if r.status_code in (404, 409, 422):
            raise InvalidInput([FieldError(
                "link_account_id", "is not an account identity can confirm for this person")])
        if r.status_code not in (200, 201, 204):
            raise IdentityUnavailable(f"identity answered {r.status_code} to the confirmation")
