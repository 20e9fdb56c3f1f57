"""Event contracts: the envelope, the payload base class and the registry of every event.

Payload models live in one module per producer: ``shared.schemas.identity``,
``groups``, ``enrollment``, ``iwds`` (producer sync-iwds) and ``notify``.
"""

from shared.schemas.base import (
    Event,
    EventContractError,
    UnknownEventType,
    UnsupportedEventVersion,
    forbidden_field_names,
)
from shared.schemas.envelope import Envelope
from shared.schemas.registry import REGISTRY, all_topics, model_for, topic_for

__all__ = [
    "REGISTRY",
    "Envelope",
    "Event",
    "EventContractError",
    "UnknownEventType",
    "UnsupportedEventVersion",
    "all_topics",
    "forbidden_field_names",
    "model_for",
    "topic_for",
]
