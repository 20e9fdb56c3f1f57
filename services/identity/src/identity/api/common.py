"""What identity's route modules share: route dependencies and the answer shapes
more than one of them returns (no routes here)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel

from identity.deps import Deps
from identity.domain.limits import MatchCaller, PublicDoor, client_address
from identity.domain.matching import Match
from identity.domain.records import Customer
from identity.service import limits
from shared.contracts.identity import Candidate, Evidence
from shared.servicekit.auth import (
    ClientTokenError,
    JwksVerifier,
    Principal,
    TokenError,
    require_staff,
)
from shared.servicekit.http import PROBLEM_BASE, Problem
from shared.servicekit.runtime import Pool, get_deps

Ids = Annotated[Deps, Depends(get_deps)]
Staff = Annotated[Principal, require_staff()]
MATCH_SCOPE = "identity:match"


async def staff_or_matcher(request: Request) -> MatchCaller:
    """Who may search matches: a staff member, or a client with scope identity:match
    (sync-iwds linking IWDS records). Who acts, for the audit and the rate limit."""
    verifier: JwksVerifier = request.app.state.verifier
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "Unauthorized", "a bearer token is required",
                      type_=PROBLEM_BASE + "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    try:
        principal: Principal = await verifier.verify(token.strip())
    except ClientTokenError:
        client = await verifier.verify_client(token.strip())
        if MATCH_SCOPE not in client.scopes:
            raise Problem(403, "Forbidden", f"requires the scope {MATCH_SCOPE}",
                          type_=PROBLEM_BASE + "forbidden") from None
        return MatchCaller(uuid.UUID(client.client_id), "client")
    except TokenError as exc:
        raise Problem(401, "Unauthorized", str(exc), type_=PROBLEM_BASE + "unauthorized",
                      headers={"WWW-Authenticate": "Bearer"}) from exc
    if not principal.is_staff or principal.claims.get("scope"):
        raise Problem(403, "Forbidden", "staff only", type_=PROBLEM_BASE + "forbidden")
    return MatchCaller(principal.id, "staff")


MatchActor = Annotated[MatchCaller, Depends(staff_or_matcher)]


def door_limit(door: PublicDoor) -> Any:
    """A route dependency counting one try at a public door per calling address
    (429 with Retry-After past the limit)."""

    async def count(request: Request, pool: Pool, ids: Ids) -> None:
        await limits.count_door(pool, ids, door, address_of(request, ids))

    return Depends(count)


def address_of(request: Request, ids: Deps) -> str:
    """The calling address a public door counts (X-Forwarded-For from a trusted proxy)."""
    return client_address(request.client.host if request.client else None,
                          request.headers.get("x-forwarded-for"), ids.limits.trusted_proxies)


class IdentifierView(BaseModel):
    kind: str
    value: str


class CustomerView(BaseModel):
    """A customer account as staff (and the customer) see it: the SSN's last four only."""

    id: uuid.UUID
    username: str
    first_name: str
    last_name: str
    date_of_birth: str | None
    email: str | None
    ssn_last4: str | None
    status: str
    password_change_required: bool
    identifiers: list[IdentifierView]


def customer_view(c: Customer) -> CustomerView:
    return CustomerView(
        id=c.id, username=c.username, first_name=c.first_name, last_name=c.last_name,
        date_of_birth=c.date_of_birth.isoformat() if c.date_of_birth else None,
        email=c.email, ssn_last4=c.ssn_last4, status=c.status,
        password_change_required=c.password_change_required,
        identifiers=[IdentifierView(kind=k, value=v) for k, v in c.identifiers],
    )


def candidate_view(m: Match) -> Candidate:
    """A candidate as staff see it: the SSN as its last four digits only."""
    p = m.candidate.person
    return Candidate(
        account_id=m.candidate.account_id,
        username=m.candidate.username,
        first_name=p.first_name,
        last_name=p.last_name,
        date_of_birth=p.date_of_birth,
        ssn_last4=p.ssn_last4,
        score=round(m.probability, 4),
        band=m.band,
        evidence=[Evidence(field=e.field, outcome=e.outcome, weight=e.weight)
                  for e in m.evidence],
    )
