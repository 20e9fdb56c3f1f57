"""Event contracts: snapshots, no secrets, the catalogue, the envelope."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import ClassVar
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.schemas import (
    REGISTRY,
    Envelope,
    Event,
    EventContractError,
    UnknownEventType,
    UnsupportedEventVersion,
    all_topics,
    forbidden_field_names,
    model_for,
    snapshot,
    topic_for,
)
from shared.schemas.compat import breaking_changes
from shared.schemas.enrollment import CustomerEnrolled, Identifier
from shared.schemas.groups import GroupMessageRequested
from shared.schemas.registry import contract_problems

REGENERATE = "run `python -m shared.schemas.snapshot` (a new revision, never an edit)"

# DESIGN.md "Event catalogue": type -> (topic, key field)
CATALOGUE: dict[str, tuple[str, str]] = {
    "CustomerAccountCreated": ("identity.accounts.v1", "account_id"),
    "CustomerAccountUpdated": ("identity.accounts.v1", "account_id"),
    "CustomerAccountsMerged": ("identity.accounts.v1", "survivor_id"),
    "CustomerAccountsUnmerged": ("identity.accounts.v1", "survivor_id"),
    "PasswordResetByStaff": ("identity.accounts.v1", "account_id"),
    "PasswordChanged": ("identity.accounts.v1", "account_id"),
    "PasswordRecoveryRequested": ("identity.accounts.v1", "account_id"),
    "SessionRevoked": ("identity.sessions.v1", "session_id"),
    "StaffAccountCreated": ("identity.staff.v1", "staff_id"),
    "StaffAccountUpdated": ("identity.staff.v1", "staff_id"),
    "ProgramStaffAuthorized": ("enrollment.programs.v1", "program"),
    "ProgramStaffRevoked": ("enrollment.programs.v1", "program"),
    "ProgramApplicationSubmitted": ("enrollment.enrollments.v1", "customer_id"),
    "CustomerEnrolled": ("enrollment.enrollments.v1", "customer_id"),
    "EnrollmentUpdated": ("enrollment.enrollments.v1", "customer_id"),
    "CustomerExited": ("enrollment.enrollments.v1", "customer_id"),
    "GroupCreated": ("groups.groups.v1", "group_id"),
    "MemberAdded": ("groups.groups.v1", "group_id"),
    "MemberRemoved": ("groups.groups.v1", "group_id"),
    "InvitationSent": ("groups.groups.v1", "group_id"),
    "InvitationAccepted": ("groups.groups.v1", "group_id"),
    "InvitationDeclined": ("groups.groups.v1", "group_id"),
    "GroupMessageRequested": ("groups.messages.v1", "message_id"),
    "DirectMessageSent": ("groups.messages.v1", "message_id"),
    "IwdsRecordUpdated": ("iwds.records.v1", "iwds_person_id"),
    "IwdsRecordRemoved": ("iwds.records.v1", "iwds_person_id"),
    "IwdsStaffAccessUpdated": ("iwds.staff-access.v1", "iwds_staff_id"),
    "IwdsSyncCompleted": ("iwds.runs.v1", "run_id"),
    "IwdsRawRecords": ("iwds.raw.v1", "feed"),
    "MessageDelivered": ("notify.deliveries.v1", "message_id"),
    "MessageFailed": ("notify.deliveries.v1", "message_id"),
    "ReadinessRecordReported": ("portal.readiness.v1", "account_id"),
}


# --- (a) snapshots match, (b) revisions compatible --------------------------------


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_schema_equals_latest_snapshot(type_name: str) -> None:
    model = REGISTRY[type_name]
    last = snapshot.latest(snapshot.SNAPSHOT_DIR, type_name, model.VERSION)
    assert last is not None, (
        f"{type_name} has no v{model.VERSION} snapshot: {REGENERATE}"
    )
    assert last.load() == snapshot.current_schema(model), (
        f"{type_name} differs from {last.path.name}: {REGENERATE}"
    )


def _snapshot_types() -> list[str]:
    return sorted(p.name for p in snapshot.SNAPSHOT_DIR.iterdir() if p.is_dir())


@pytest.mark.parametrize("type_name", _snapshot_types())
def test_revisions_within_a_major_are_compatible(type_name: str) -> None:
    found = snapshot.revisions(snapshot.SNAPSHOT_DIR, type_name)
    for major in sorted({r.major for r in found}):
        chain = [r for r in found if r.major == major]
        assert [r.revision for r in chain] == list(range(len(chain))), type_name
        for older, newer in itertools.pairwise(chain):
            assert breaking_changes(older.load(), newer.load()) == [], newer.path


# --- (d) no SSN or password anywhere ----------------------------------------------


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_no_secret_fields(type_name: str) -> None:
    assert forbidden_field_names(REGISTRY[type_name]) == []


def test_secret_field_checker_catches_planted_fields() -> None:
    class Deep(BaseModel):
        ssn_last4: str

    class Person(BaseModel):
        details: list[Deep]
        social_security: str | None = None

    class Bad(Event):
        TYPE: ClassVar[str] = "Bad"
        TOPIC: ClassVar[str] = "test.bad.v1"
        KEY_FIELD: ClassVar[str] = "id"

        id: UUID
        temp_password: str
        who: dict[str, Person]
        password_change_required: bool = False
        code: str = ""

    class Aliased(BaseModel):
        secret: str
        model_config = ConfigDict(
            alias_generator=lambda n: "SSN" if n == "secret" else n
        )

    found = forbidden_field_names(Bad)
    assert sorted(found) == [
        "Bad.temp_password",
        "Bad.who.details.ssn_last4",
        "Bad.who.social_security",
    ]
    assert forbidden_field_names(Aliased) == ["Aliased.secret"]
    assert any("Bad.temp_password" in p for p in contract_problems([Bad]))


def test_recovery_token_is_the_only_secret_and_has_no_banned_name() -> None:
    from shared.schemas.identity import PasswordRecoveryRequested

    assert "link_token" in PasswordRecoveryRequested.model_fields
    assert forbidden_field_names(PasswordRecoveryRequested) == []


def test_customer_enrolled_carries_no_offense_data() -> None:
    names = " ".join(CustomerEnrolled.model_fields) + " ".join(Identifier.model_fields)
    assert "offense" not in names


# --- (e) catalogue -----------------------------------------------------------------


def test_every_catalogue_event_is_registered_on_its_topic() -> None:
    missing = sorted(set(CATALOGUE) - set(REGISTRY))
    assert missing == []
    for type_name, (topic, key) in CATALOGUE.items():
        model = model_for(type_name)
        assert (type_name, topic, key) == (model.TYPE, model.TOPIC, model.KEY_FIELD)
        assert topic_for(type_name) == topic


def test_topics() -> None:
    assert all_topics() == sorted({topic for topic, _ in CATALOGUE.values()})
    assert contract_problems(REGISTRY.values()) == []


# --- (f) envelope ------------------------------------------------------------------


def _enrolled() -> CustomerEnrolled:
    return CustomerEnrolled(
        enrollment_id=uuid4(),
        program="returning-citizens",
        customer_id=uuid4(),
        staff_id=uuid4(),
        enrolled_on=date(2025, 3, 1),
        identifiers=[Identifier(kind="idoc_number", value="R12345")],
        institution="kewanee",
        counties=["cook", "will"],
        msr_date=date(2025, 2, 28),
    )


def test_envelope_round_trips_through_bytes() -> None:
    event = _enrolled()
    env = Envelope.wrap(event, producer="enrollment", correlation_id="req-1")
    assert (env.type, env.version, env.subject) == (
        "CustomerEnrolled",
        1,
        str(event.customer_id),
    )
    data = env.to_bytes()
    assert b": " not in data  # compact
    back = Envelope.from_bytes(data)
    assert back == env
    payload = back.parse_payload()
    assert isinstance(payload, CustomerEnrolled)
    assert payload == event
    assert back.payload_as(CustomerEnrolled) == event


def test_envelope_tolerates_additive_payload_fields() -> None:
    env = Envelope.wrap(_enrolled(), producer="enrollment")
    newer = env.model_copy(update={"payload": {**env.payload, "added_in_1_1": "x"}})
    assert isinstance(
        Envelope.from_bytes(newer.to_bytes()).parse_payload(), CustomerEnrolled
    )


def test_unknown_type_is_a_clear_error() -> None:
    env = Envelope(type="NoSuchEvent", version=1, producer="x", subject="s", payload={})
    with pytest.raises(UnknownEventType, match="NoSuchEvent") as caught:
        env.parse_payload()
    assert isinstance(caught.value, KeyError)
    with pytest.raises(KeyError):
        model_for("NoSuchEvent")


def test_version_and_type_mismatches_are_errors() -> None:
    env = Envelope.wrap(_enrolled(), producer="enrollment")
    with pytest.raises(UnsupportedEventVersion):
        env.model_copy(update={"version": 2}).parse_payload()
    with pytest.raises(EventContractError):
        env.payload_as(GroupMessageRequested)
    with pytest.raises(ValueError, match="subject"):
        Envelope.wrap(_enrolled(), producer="enrollment", subject="other")


def test_envelope_rejects_naive_datetime_and_stores_utc() -> None:
    base = {"type": "T", "version": 1, "producer": "p", "subject": "s", "payload": {}}
    with pytest.raises(ValidationError):
        Envelope.model_validate({**base, "occurred_at": datetime(2025, 1, 1, 12)})
    with pytest.raises(ValidationError):
        Envelope.from_bytes(json.dumps({**base, "occurred_at": "2025-01-01T12:00:00"}))
    plus2 = datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    env = Envelope.model_validate({**base, "occurred_at": plus2})
    assert env.occurred_at == plus2 and env.occurred_at.utcoffset() == timedelta(0)
    assert Envelope.model_validate(base).occurred_at.tzinfo == UTC
    with pytest.raises(ValidationError):
        Envelope.model_validate({**base, "version": 0})


def test_group_message_chunks_are_checked() -> None:
    fields = {
        "message_id": uuid4(),
        "group_id": uuid4(),
        "staff_id": uuid4(),
        "subject": "Hello",
        "body": "Body",
        "recipient_ids": [uuid4()],
    }
    GroupMessageRequested.model_validate({**fields, "chunk_index": 1, "chunk_count": 2})
    with pytest.raises(ValidationError, match="chunk_index"):
        GroupMessageRequested.model_validate(
            {**fields, "chunk_index": 2, "chunk_count": 2}
        )
