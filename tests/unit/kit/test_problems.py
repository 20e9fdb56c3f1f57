"""The kit's standard domain errors as RFC 9457 problems, and a service's own map first."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from shared.servicekit.errors import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
)
from shared.servicekit.http import (
    PROBLEM_BASE,
    Problem,
    RequestIdMiddleware,
    install_problem_handlers,
    standard_problem,
)


def test_invalid_input_lists_every_field_without_values() -> None:
    p = standard_problem(InvalidInput([FieldError("ssn", "must be in the format XXX-XX-XXXX"),
                                       FieldError("date_of_birth", "is required")]))
    assert p is not None and p.status == 422 and p.type == PROBLEM_BASE + "validation"
    assert p.extra["errors"] == [
        {"field": "ssn", "reason": "must be in the format XXX-XX-XXXX"},
        {"field": "date_of_birth", "reason": "is required"}]


def test_not_found_forbidden_and_rate_limit() -> None:
    p = standard_problem(NotFound("no such program"))
    assert p is not None and (p.status, p.detail) == (404, "no such program")
    p = standard_problem(Forbidden("needs the reentry role"))
    assert p is not None and (p.status, p.detail) == (403, "needs the reentry role")
    assert p.type == PROBLEM_BASE + "forbidden"
    p = standard_problem(TooManyRequests("slow down", retry_after=7))
    assert p is not None and p.status == 429 and p.headers == {"Retry-After": "7"}


def test_a_conflict_names_its_field_or_stands_for_the_whole_request() -> None:
    p = standard_problem(Conflict("email", "belongs to another account"))
    assert p is not None and p.status == 409 and p.type == PROBLEM_BASE + "conflict"
    assert p.detail == "email belongs to another account" and p.extra == {"field": "email"}
    p = standard_problem(Conflict(None, "IDOC number R12345 is enrolled",
                                  code="idoc-number-enrolled", existing_enrollment_id="e1"))
    assert p is not None and p.type == PROBLEM_BASE + "idoc-number-enrolled"
    assert p.detail == "IDOC number R12345 is enrolled"
    assert p.extra == {"existing_enrollment_id": "e1"}


class Unknown(DomainError):
    pass


class Special(DomainError):
    pass


def test_a_service_kind_is_left_to_the_service() -> None:
    assert standard_problem(Unknown("x")) is None


async def test_the_service_map_goes_first_then_the_kit_then_500() -> None:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)

    def own(exc: DomainError) -> Problem | None:
        if isinstance(exc, Special):
            return Problem(418, "Special", "a service's own kind", type_=PROBLEM_BASE + "special")
        return None

    install_problem_handlers(app, own)
    errors: dict[str, DomainError] = {
        "special": Special("s"), "missing": NotFound("gone"), "odd": Unknown("odd")}

    @app.get("/{kind}")
    async def fail(kind: str) -> None:
        raise errors[kind]

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://t") as c:
        special = await c.get("/special")
        missing = await c.get("/missing", headers={"X-Request-ID": "req-7"})
        odd = await c.get("/odd")
    assert special.status_code == 418 and special.json()["type"].endswith("/special")
    assert missing.status_code == 404 and missing.json()["request_id"] == "req-7"
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert odd.status_code == 500  # a kind nobody maps is a bug, answered as one
    assert odd.json()["detail"] == "Something went wrong on our side."
