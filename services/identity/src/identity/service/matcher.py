"""The matcher every path that could make a second account asks (staff search,
creating a customer, self-registration, the import, the duplicates queue): candidates
from the indexed blocks, scored by ``identity.domain.matching``. It imports no other
use case, so every use case may use it."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from identity.domain.accounts import MatchFields
from identity.domain.blocking import (
    SsnRelation,
    birthday_query_keys,
    broad_query_keys,
    query_keys,
    ssn_slips,
)
from identity.domain.matching import Match, Thresholds, rank, thresholds_from
from identity.domain.matching_weights import DEFAULT_WEIGHTS, Weights
from identity.domain.records import Candidate, Person
from identity.domain.ssn import SsnVault
from identity.repository import matching as mrepo
from shared.servicekit.db import Connection

if TYPE_CHECKING:
    from identity.settings import IdentitySettings


@dataclass(frozen=True)
class Matcher:
    """What matching needs: the SSN vault (for keyed lookups) and the thresholds; the
    weights are the newest fitted ones in the database unless given here."""

    vault: SsnVault
    thresholds: Thresholds
    weights: Weights | None = None

    @classmethod
    def from_settings(cls, s: IdentitySettings) -> Matcher:
        vault = SsnVault.from_settings(
            s.ssn_keys.get_secret_value(), s.ssn_active_key, s.ssn_hmac_key.get_secret_value()
        )
        return cls(vault, thresholds_from(s))


def person_of(fields: MatchFields) -> Person:
    return Person(
        first_name=fields.first_name,
        last_name=fields.last_name,
        date_of_birth=fields.date_of_birth,
        ssn_digits=fields.ssn,
        idoc_number=fields.idoc_number,
        email=fields.email,
    )


def ssn_lookups(vault: SsnVault, digits: str) -> dict[bytes, SsnRelation]:
    """Keyed hashes of the SSN and of each slip of it the SSA could have issued."""
    slips = ssn_slips(digits)
    out: dict[bytes, SsnRelation] = {vault.lookup(digits): "equal"}
    hashes = vault.lookups_of_digits([d for d, _ in slips])
    for lookup, (_, relation) in zip(hashes, slips, strict=True):
        out.setdefault(lookup, relation)
    return out


async def candidates_for(
    conn: Connection, matcher: Matcher, person: Person, *, exclude: Sequence[uuid.UUID] = ()
) -> list[Candidate]:
    """The accounts in any block of ``person`` (unscored)."""
    lookups = ssn_lookups(matcher.vault, person.ssn_digits) if person.ssn_digits else {}
    return await mrepo.candidates(
        conn,
        keys=query_keys(person.first_name, person.last_name, person.date_of_birth),
        ssn_lookups=lookups,
        idoc_number=person.idoc_number,
        email=person.email,
        exclude=exclude,
        query_has_ssn=bool(person.ssn_digits),
        broad_keys=broad_query_keys(person.first_name, person.last_name,
                                    person.date_of_birth),
        broad_cap=mrepo.BROAD_CAP if person.date_of_birth else mrepo.BROAD_CAP_NO_DOB,
        birthday_keys=birthday_query_keys(person.first_name, person.last_name,
                                          person.date_of_birth),
    )


async def find(
    conn: Connection, matcher: Matcher, person: Person, *, exclude: Sequence[uuid.UUID] = ()
) -> list[Match]:
    """The review list for ``person``: up to five candidates at or above ``weak``, best
    first, each with its band (only ``strong`` may be acted on without a person)."""
    found = await candidates_for(conn, matcher, person, exclude=exclude)
    weights = matcher.weights or await current_weights(conn)
    return rank(person, found, matcher.thresholds, weights=weights)


# How often a process looks for newer fitted weights (one indexed max(id) read).
WEIGHTS_CHECK_SECONDS = 60.0


@dataclass
class _LoadedWeights:
    weights_id: int | None = None
    weights: Weights = DEFAULT_WEIGHTS
    checked: float = -math.inf


_loaded = _LoadedWeights()


async def current_weights(conn: Connection) -> Weights:
    """The newest weights of ``match_weights`` (the table's defaults when none), looked
    for at most once a minute per process."""
    now = time.monotonic()
    if now - _loaded.checked < WEIGHTS_CHECK_SECONDS:
        return _loaded.weights
    _loaded.checked = now
    newest = await mrepo.latest_weights_id(conn)
    if newest != _loaded.weights_id:
        text = await mrepo.weights_json(conn, newest) if newest is not None else None
        _loaded.weights = Weights.from_json(json.loads(text)) if text else DEFAULT_WEIGHTS
        _loaded.weights_id = newest
    return _loaded.weights


def forget_loaded_weights() -> None:
    """Look for the newest weights on the next match (after a fit, in tests)."""
    _loaded.checked = -math.inf


def evidence_of(m: Match) -> list[dict[str, Any]]:
    return [{"field": e.field, "outcome": e.outcome, "weight": e.weight} for e in m.evidence]
