"""Events on the portal's readiness topic (the assessment and course systems produce them).

Each event carries one readiness record exactly as a line of readiness's NDJSON feed
(``POST /v1/feeds/readiness``): ``kind``, ``record_id``, ``account_id``,
``occurred_at`` and the kind's own fields. The payload is deliberately loose here:
readiness validates every record in one pipeline for both ways in and keeps a bad
record with its reason (rather than dead-lettering the event), so a record with a
bad field never stops the rest.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from shared.schemas.base import Event

PRODUCER = "portal"
READINESS_TOPIC = "portal.readiness.v1"

RECORD_KINDS = (
    "assessment_completed",
    "employment101_module_completed",
    "employment101_plan_updated",
    "outcome_recorded",
)


class ReadinessRecordReported(Event):
    """The portal reported one readiness record about a customer account."""

    model_config = ConfigDict(frozen=True, extra="allow")

    TYPE: ClassVar[str] = "ReadinessRecordReported"
    TOPIC: ClassVar[str] = READINESS_TOPIC
    KEY_FIELD: ClassVar[str] = "account_id"

    kind: str = Field(description="One of: " + ", ".join(RECORD_KINDS) + ".")
    record_id: str = Field(description="The producer's id of the record (idempotency key).")
    account_id: str = Field(description="The customer's account id (a UUID).")
    occurred_at: str = Field(
        description="The producer's time of the record (ISO 8601 with an offset); the "
        "latest wins when records arrive late or out of order."
    )
    # assessment_completed
    assessment_code: Any = Field(default=None, description="assessment_completed: catalogue code.")
    version: Any = Field(default=None, description="assessment_completed: assessment version.")
    completed_at: Any = Field(
        default=None, description="assessment_completed, employment101_module_completed."
    )
    scores: Any = Field(default=None, description="assessment_completed: scale -> number.")
    summary: Any = Field(default=None, description="assessment_completed: result summary.")
    # employment101_module_completed
    module_code: Any = Field(default=None, description="employment101_module_completed.")
    score: Any = Field(default=None, description="employment101_module_completed: a number.")
    attempt: Any = Field(default=None, description="employment101_module_completed: 1, 2, ...")
    # employment101_plan_updated
    goals: Any = Field(default=None, description="employment101_plan_updated: list of text.")
    steps: Any = Field(
        default=None,
        description="employment101_plan_updated: [{title, due_on, status}], status one of "
        "not_started, in_progress, completed.",
    )
    # outcome_recorded
    outcome_kind: Any = Field(
        default=None, description="outcome_recorded: certificate, credential, diploma, employment."
    )
    title: Any = Field(default=None, description="outcome_recorded.")
    issuer: Any = Field(default=None, description="outcome_recorded.")
    issued_on: Any = Field(default=None, description="outcome_recorded: a date.")
    credential_id: Any = Field(default=None, description="outcome_recorded (optional).")

    def record(self) -> dict[str, Any]:
        """The record as a feed line would carry it (absent fields left out)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}
