"""Routes of person matching: search, decisions, self-registration, the duplicates
queue. Thin: parse, call a use case, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict

from identity.api.common import IdentifierView, Ids, MatchActor, Staff, candidate_view
from identity.domain.accounts import FieldError, InvalidInput, MatchFields, clean_search_fields
from identity.repository.matching import DuplicatePair, PairAccount
from identity.service import limits
from identity.service import matcher as matcher_svc
from identity.service import matching as matches
from shared.contracts.identity import (
    MatchAnswer,
    MatchConfirmation,
    MatchQuery,
)
from shared.servicekit.paging import cursor_key, encode_cursor
from shared.servicekit.runtime import Pool

router = APIRouter()
PairId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/v1/matches", tags=["matching"])
async def find_matches(body: MatchQuery, pool: Pool, ids: Ids, actor: MatchActor
                       ) -> MatchAnswer:
    """At most five candidates, best first, each with the evidence for it. The query
    names the person (first name, last name, date of birth) or gives an IDOC number;
    each caller may search ``IDENTITY_MATCH_RATE_PER_MINUTE`` / ``..._PER_DAY`` times
    (429 with Retry-After past it)."""
    await limits.count_match(pool, ids, actor, "POST /v1/matches")
    fields = MatchFields(body.first_name, body.last_name, body.date_of_birth, body.ssn,
                         body.idoc_number, body.email)
    clean = clean_search_fields(fields, today=ids.clock.today())
    found = await matches.search(
        pool, matcher_svc.Matcher(ids.vault, ids.thresholds), clean,
        staff_id=actor.id, actor_kind=actor.kind, account_id=body.account_id)
    return MatchAnswer(candidates=[candidate_view(m) for m in found])


@router.post("/v1/matches/confirmations", status_code=204, tags=["matching"],
             response_class=Response)
async def confirm_match(body: MatchConfirmation, pool: Pool, staff: Staff) -> None:
    """Staff chose an existing account as the person; the rejected ones are remembered."""
    await matches.confirm(pool, body.account_id, rejected=body.rejected_account_ids,
                          staff_id=staff.id)


# -- the duplicates queue ------------------------------------------------------------------


class PairAccountView(BaseModel):
    account_id: uuid.UUID
    username: str | None
    first_name: str | None
    last_name: str | None
    date_of_birth: str | None
    ssn_last4: str | None
    status: str
    identifiers: list[IdentifierView]


class PairView(BaseModel):
    id: int
    score: float
    band: str
    status: str
    found_at: str
    accounts: list[PairAccountView]
    evidence: Any


class PairPage(BaseModel):
    items: list[PairView]
    next_cursor: str | None


class Merged(BaseModel):
    pair_id: int
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    status: str


def _account_view(a: PairAccount) -> PairAccountView:
    return PairAccountView(
        account_id=a.id, username=a.username, first_name=a.first_name,
        last_name=a.last_name,
        date_of_birth=a.date_of_birth.isoformat() if a.date_of_birth else None,
        ssn_last4=a.ssn_last4, status=a.status,
        identifiers=[IdentifierView(kind=k, value=v) for k, v in a.identifiers],
    )


def _pair_view(p: DuplicatePair) -> PairView:
    return PairView(
        id=p.id, score=p.score, band=p.band, status=p.status,
        found_at=p.found_at.isoformat(), accounts=[_account_view(p.a), _account_view(p.b)],
        evidence=p.evidence,
    )


@router.get("/v1/duplicates", tags=["duplicates"])
async def list_duplicates(
    pool: Pool, staff: Staff,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> PairPage:
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
    return PairPage(items=[_pair_view(p) for p in pairs], next_cursor=next_cursor)


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    survivor_id: uuid.UUID


@router.post("/v1/duplicates/{pair_id}/merge", tags=["duplicates"])
async def merge(pair_id: PairId, body: MergeBody, pool: Pool, staff: Staff) -> Merged:
    """Keep ``survivor_id``; the other account is disabled and kept, so this can be undone."""
    pair = await matches.merge(pool, pair_id, survivor_id=body.survivor_id,
                               staff_id=staff.id)
    merged = pair.b.id if body.survivor_id == pair.a.id else pair.a.id
    return Merged(pair_id=pair_id, survivor_id=body.survivor_id, merged_id=merged,
                  status="merged")


@router.post("/v1/duplicates/{pair_id}/unmerge", status_code=204, tags=["duplicates"],
             response_class=Response)
async def unmerge(pair_id: PairId, pool: Pool, staff: Staff) -> None:
    await matches.unmerge(pool, pair_id, staff_id=staff.id)


@router.post("/v1/duplicates/{pair_id}/dismiss", status_code=204, tags=["duplicates"],
             response_class=Response)
async def dismiss(pair_id: PairId, pool: Pool, staff: Staff) -> None:
    """Two different people: off the queue and never proposed again."""
    await matches.dismiss(pool, pair_id, staff_id=staff.id)
