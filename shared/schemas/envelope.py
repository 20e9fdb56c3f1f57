"""The envelope every event travels in; ``event_id`` is the consumers' dedup key."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.schemas.base import (
    Event,
    EventContractError,
    UnknownEventType,
    UnsupportedEventVersion,
)

E = TypeVar("E", bound=Event)


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """One event on the wire: metadata plus the payload as a JSON object."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(default_factory=uuid4)
    type: str = Field(min_length=1)
    version: int = Field(ge=1, description="Major version of the payload schema.")
    occurred_at: AwareDatetime = Field(default_factory=_now)
    producer: str = Field(
        min_length=1, description="Name of the service that emitted it."
    )
    correlation_id: str | None = None
    causation_id: str | None = Field(
        default=None, description="Id of the event or request that caused this one."
    )
    subject: str = Field(min_length=1, description="The Kafka key: the subject's id.")
    payload: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def wrap(
        cls,
        payload_model: Event,
        *,
        producer: str,
        subject: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Envelope:
        """Wrap a payload; type and version come from its class, subject from its key field."""
        key = payload_model.subject_key()
        if subject is not None and subject != key:
            raise ValueError(
                f"subject {subject!r} differs from {type(payload_model).__name__}."
                f"{payload_model.KEY_FIELD} {key!r}"
            )
        return cls(
            type=payload_model.TYPE,
            version=payload_model.VERSION,
            producer=producer,
            subject=key,
            correlation_id=correlation_id,
            causation_id=causation_id,
            payload=payload_model.model_dump(mode="json"),
        )

    def to_bytes(self) -> bytes:
        """Compact JSON."""
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Envelope:
        """Parse compact or pretty JSON; raises ``pydantic.ValidationError`` on bad input."""
        return cls.model_validate_json(data)

    def parse_payload(
        self, registry: Mapping[str, builtins.type[Event]] | None = None
    ) -> Event:
        """The payload as its registered model (``UnknownEventType`` if none is registered)."""
        if registry is None:
            from shared.schemas.registry import REGISTRY

            registry = REGISTRY
        model = registry.get(self.type)
        if model is None:
            raise UnknownEventType(self.type)
        if self.version != model.VERSION:
            raise UnsupportedEventVersion(
                f"{self.type} v{self.version} received; this process knows v{model.VERSION}"
            )
        return model.model_validate(self.payload)

    def payload_as(self, model: builtins.type[E]) -> E:
        """The payload as ``model``, checking that the envelope's type is that model's."""
        if self.type != model.TYPE:
            raise EventContractError(f"envelope holds {self.type}, not {model.TYPE}")
        if self.version != model.VERSION:
            raise UnsupportedEventVersion(
                f"{self.type} v{self.version} received; {model.__name__} is v{model.VERSION}"
            )
        return model.model_validate(self.payload)
