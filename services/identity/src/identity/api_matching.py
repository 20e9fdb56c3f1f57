"""Routes of person matching: search, decisions, self-registration, the duplicates
queue. Thin: parse, call a use case, shape the answer."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from identity import matches, registration
from identity.api_deps import Ids, Staff
from identity.clients import MatchActor
from identity.domain import FieldError, InvalidInput, MatchFields, clean_match_fields
from identity.matching import Match
from identity.repository.matches import DuplicatePair, PairAccount
from shared.contracts.identity import (
    Candidate,
    Evidence,
    MatchAnswer,
    MatchConfirmation,
    MatchQuery,
)
from shared.servicekit.paging import cursor_key, encode_cursor
from shared.servicekit.runtime import Pool

router = APIRouter()
PairId = Annotated[int, Path(ge=1, le=2**63 - 1)]


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
        evidence=[Evidence.model_validate(e) for e in matches.evidence_of(m)],
    )


@router.post("/v1/matches", tags=["matching"])
async def find_matches(body: MatchQuery, pool: Pool, ids: Ids, actor: MatchActor
                       ) -> MatchAnswer:
    """At most five candidates, best first, each with the evidence for it."""
    fields = MatchFields(body.first_name, body.last_name, body.date_of_birth, body.ssn,
                         body.idoc_number, body.email)
    clean = clean_match_fields(fields, today=ids.clock.today())
    found = await matches.search(
        pool, matches.Matcher(ids.vault, ids.thresholds), clean,
        staff_id=actor, account_id=body.account_id)
    return MatchAnswer(candidates=[candidate_view(m) for m in found])


@router.post("/v1/matches/confirmations", status_code=204, tags=["matching"])
async def confirm_match(body: MatchConfirmation, pool: Pool, staff: Staff) -> Response:
    """Staff chose an existing account as the person; the rejected ones are remembered."""
    await matches.confirm(pool, body.account_id, rejected=body.rejected_account_ids,
                          staff_id=staff.id)
    return Response(status_code=204)


class RegistrationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=100)
    password: str = Field(max_length=1024)
    first_name: str = Field(max_length=200)
    last_name: str = Field(max_length=200)
    date_of_birth: date
    email: str | None = Field(default=None, max_length=320)
    ssn: str | None = Field(default=None, max_length=20)


@router.post("/v1/registrations", status_code=201, tags=["matching"])
async def register(body: RegistrationBody, pool: Pool, ids: Ids) -> dict[str, str]:
    """Public: a person creates their own account."""
    reg = registration.Registration(
        username=body.username, password=body.password, first_name=body.first_name,
        last_name=body.last_name, date_of_birth=body.date_of_birth, email=body.email,
        ssn=body.ssn)
    account_id, username = await registration.register(pool, ids, reg)
    return {"id": str(account_id), "username": username}


# -- the duplicates queue ------------------------------------------------------------------


def _account_view(a: PairAccount) -> dict[str, Any]:
    return {
        "account_id": str(a.id), "username": a.username, "first_name": a.first_name,
        "last_name": a.last_name,
        "date_of_birth": a.date_of_birth.isoformat() if a.date_of_birth else None,
        "ssn_last4": a.ssn_last4, "status": a.status,
        "identifiers": [{"kind": k, "value": v} for k, v in a.identifiers],
    }


def _pair_view(p: DuplicatePair) -> dict[str, Any]:
    return {
        "id": p.id, "score": p.score, "band": p.band, "status": p.status,
        "found_at": p.found_at.isoformat(), "accounts": [_account_view(p.a), _account_view(p.b)],
        "evidence": p.evidence,
    }


@router.get("/v1/duplicates", tags=["duplicates"])
async def list_duplicates(
    pool: Pool, staff: Staff,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """Open pairs of accounts that may be one person, best first."""
    after: tuple[float, int] | None = None
    if cursor:
        reason = "is not a cursor of this list"
        score, last_id = cursor_key(cursor, 2, reason=reason)
        try:
            after = (float(score), int(last_id))
        except ValueError:
            raise InvalidInput([FieldError("cursor", reason)]) from None
    pairs = await matches.duplicates(pool, limit=limit, after=after)
    next_cursor = (
        encode_cursor(pairs[-1].score, pairs[-1].id) if len(pairs) == limit else None
    )
    return {"items": [_pair_view(p) for p in pairs], "next_cursor": next_cursor}


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    survivor_id: uuid.UUID


@router.post("/v1/duplicates/{pair_id}/merge", tags=["duplicates"])
async def merge(pair_id: PairId, body: MergeBody, pool: Pool, staff: Staff) -> dict[str, Any]:
    """Keep ``survivor_id``; the other account is disabled and kept, so this can be undone."""
    pair = await matches.merge(pool, pair_id, survivor_id=body.survivor_id,
                               staff_id=staff.id)
    merged = pair.b.id if body.survivor_id == pair.a.id else pair.a.id
    return {"pair_id": pair_id, "survivor_id": str(body.survivor_id), "merged_id": str(merged),
            "status": "merged"}


@router.post("/v1/duplicates/{pair_id}/unmerge", status_code=204, tags=["duplicates"])
async def unmerge(pair_id: PairId, pool: Pool, staff: Staff) -> Response:
    await matches.unmerge(pool, pair_id, staff_id=staff.id)
    return Response(status_code=204)


@router.post("/v1/duplicates/{pair_id}/dismiss", status_code=204, tags=["duplicates"])
async def dismiss(pair_id: PairId, pool: Pool, staff: Staff) -> Response:
    """Two different people: off the queue and never proposed again."""
    await matches.dismiss(pool, pair_id, staff_id=staff.id)
    return Response(status_code=204)
