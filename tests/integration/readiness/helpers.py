"""Record factories for the readiness tests (the pinned NDJSON field names)."""

from __future__ import annotations

import uuid
from typing import Any


def rid() -> str:
    return f"rec-{uuid.uuid4().hex[:12]}"


def assessment(account: uuid.UUID, code: str = "career-cluster", *,
               completed_at: str = "2026-03-02T15:00:00+00:00",
               occurred_at: str | None = None, record_id: str | None = None,
               scores: dict[str, float] | None = None, summary: str = "Health Science",
               version: str = "2024.1") -> dict[str, Any]:
    return {"kind": "assessment_completed", "record_id": record_id or rid(),
            "account_id": str(account), "occurred_at": occurred_at or completed_at,
            "assessment_code": code, "version": version, "completed_at": completed_at,
            "scores": scores if scores is not None else {"health-science": 42, "it": 17.5},
            "summary": summary}


def module(account: uuid.UUID, code: str = "ees-work-ethic", *, score: float = 80,
           attempt: int = 1, completed_at: str = "2026-03-03T10:00:00-06:00",
           record_id: str | None = None) -> dict[str, Any]:
    return {"kind": "employment101_module_completed", "record_id": record_id or rid(),
            "account_id": str(account), "occurred_at": completed_at, "module_code": code,
            "score": score, "attempt": attempt, "completed_at": completed_at}


def plan(account: uuid.UUID, *, occurred_at: str = "2026-03-04T09:00:00+00:00",
         goals: list[str] | None = None, record_id: str | None = None) -> dict[str, Any]:
    return {"kind": "employment101_plan_updated", "record_id": record_id or rid(),
            "account_id": str(account), "occurred_at": occurred_at,
            "goals": goals if goals is not None else ["Get a CDL"],
            "steps": [{"title": "Enroll in a CDL course", "due_on": "2026-04-01",
                       "status": "in_progress"},
                      {"title": "Pass the permit test", "due_on": None,
                       "status": "not_started"}]}


def outcome(account: uuid.UUID, *, kind: str = "certificate", title: str = "ServSafe Food Handler",
            issued_on: str = "2026-02-20", record_id: str | None = None) -> dict[str, Any]:
    return {"kind": "outcome_recorded", "record_id": record_id or rid(),
            "account_id": str(account), "occurred_at": "2026-02-20T12:00:00+00:00",
            "outcome_kind": kind, "title": title, "issuer": "National Restaurant Association",
            "issued_on": issued_on, "credential_id": "SS-123456"}


def audit_details(value: Any) -> dict[str, Any]:
    """An audit row's details as a dict (the kit's writer json-encodes them before the
    pool's jsonb codec encodes them again, so they can come back as a JSON string)."""
    import json

    while isinstance(value, str):
        value = json.loads(value)
    return dict(value)
