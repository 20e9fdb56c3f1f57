"""Events produced by the sync-iwds service (IWDS records, staff access, sync runs)."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NonNegativeInt

from shared.schemas.base import Code, Event, Name

PRODUCER = "sync-iwds"
RECORDS_TOPIC = "iwds.records.v1"
STAFF_ACCESS_TOPIC = "iwds.staff-access.v1"
RUNS_TOPIC = "iwds.runs.v1"
RAW_TOPIC = "iwds.raw.v1"

RecordStatus = Literal["active", "exited"]
AccessLevel = Literal["statewide", "lwia", "office", "caseload"]
RunKind = Literal["nightly", "stream", "manual"]


class IwdsRecordUpdated(Event):
    """An IWDS person record was added or changed; carries its full current state."""

    TYPE: ClassVar[str] = "IwdsRecordUpdated"
    TOPIC: ClassVar[str] = RECORDS_TOPIC
    KEY_FIELD: ClassVar[str] = "iwds_person_id"

    iwds_person_id: Code
    account_id: UUID | None = Field(
        default=None, description="Linked customer account, if any."
    )
    lwia_code: Code
    office_code: Code | None = None
    case_manager_staff_id: Code | None = Field(
        default=None, description="IWDS staff id."
    )
    program: Code | None = None
    status: RecordStatus
    exit_date: date | None = None


class IwdsRecordRemoved(Event):
    """An IWDS person record disappeared from the feed; last known placement included."""

    TYPE: ClassVar[str] = "IwdsRecordRemoved"
    TOPIC: ClassVar[str] = RECORDS_TOPIC
    KEY_FIELD: ClassVar[str] = "iwds_person_id"

    iwds_person_id: Code
    account_id: UUID | None = None
    lwia_code: Code | None = None
    office_code: Code | None = None


class IwdsAccessGrant(BaseModel):
    """One IWDS access grant: a level, scoped to an LWIA and office where it applies."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    level: AccessLevel
    lwia_code: Code | None = None
    office_code: Code | None = None


class IwdsStaffAccessUpdated(Event):
    """An IWDS staff member's access changed; ``grants`` is the full current set."""

    TYPE: ClassVar[str] = "IwdsStaffAccessUpdated"
    TOPIC: ClassVar[str] = STAFF_ACCESS_TOPIC
    KEY_FIELD: ClassVar[str] = "iwds_staff_id"

    iwds_staff_id: Code
    worknet_username: Name | None = Field(
        default=None, description="Linked workNet username."
    )
    grants: list[IwdsAccessGrant] = Field(default_factory=list)


class IwdsRunCounts(BaseModel):
    """Record counts of one sync run."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    read: NonNegativeInt = 0
    added: NonNegativeInt = 0
    changed: NonNegativeInt = 0
    removed: NonNegativeInt = 0
    unchanged: NonNegativeInt = 0
    rejected: NonNegativeInt = 0
    unlinked: NonNegativeInt = 0


class IwdsSyncCompleted(Event):
    """A sync run finished."""

    TYPE: ClassVar[str] = "IwdsSyncCompleted"
    TOPIC: ClassVar[str] = RUNS_TOPIC
    KEY_FIELD: ClassVar[str] = "run_id"

    run_id: UUID
    kind: RunKind
    started_at: AwareDatetime
    finished_at: AwareDatetime
    counts: IwdsRunCounts


class IwdsRawRecords(Event):
    """Records an IWDS producer publishes between nightly extracts: a streamed (partial)
    update of one feed, each record with the feed's CSV column names. sync-iwds reads
    them through the same pipeline as a file; any field beyond the feed's columns (an
    ``ssn`` above all) is dropped on read. Keyed by feed, so one feed's messages stay
    in order (a record older than the one held is ignored anyway)."""

    TYPE: ClassVar[str] = "IwdsRawRecords"
    TOPIC: ClassVar[str] = RAW_TOPIC
    KEY_FIELD: ClassVar[str] = "feed"

    feed: Literal["participants", "staff-access"]
    records: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
