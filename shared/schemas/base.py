"""Base class of every event payload, shared field types and contract errors."""

from __future__ import annotations

import types
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, StringConstraints

#: A short reference code (program, county, institution, LWIA, office...).
Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
]
#: A person's name part, a username, a subject line.
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
#: Free text such as a message body.
Text = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]

#: Substrings that no event field name may contain (booleans excepted).
FORBIDDEN_NAME_PARTS: tuple[str, ...] = ("ssn", "social", "password")


class EventContractError(Exception):
    """An event does not match the contracts known to this process."""


class UnknownEventType(EventContractError, KeyError):
    """No payload model is registered for an event type name."""

    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name

    def __str__(self) -> str:
        return f"unknown event type {self.type_name!r}: no payload model is registered for it"


class UnsupportedEventVersion(EventContractError):
    """The envelope's major version differs from the registered model's."""


class Event(BaseModel):
    """Payload of an event: frozen, tolerant of fields added by a newer minor."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]
    KEY_FIELD: ClassVar[str]
    VERSION: ClassVar[int] = 1

    def subject_key(self) -> str:
        """The Kafka key: the value of the field named by ``KEY_FIELD``, as text.

        (Not ``subject()``: message events have a ``subject`` field.)
        """
        return str(getattr(self, self.KEY_FIELD))


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    args = [a for a in get_args(annotation) if a is not type(None)]
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_bool(args[0])
    if origin in (Union, types.UnionType):
        return bool(args) and all(_is_bool(a) for a in args)
    return False


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(_nested_models(arg))
    return found


def forbidden_field_names(model: type[BaseModel]) -> list[str]:
    """Dotted paths of fields (recursively) whose name or alias looks like an SSN or password."""
    found: list[str] = []
    seen: set[type[BaseModel]] = set()

    def walk(current: type[BaseModel], prefix: str) -> None:
        if current in seen:
            return
        seen.add(current)
        for name, info in current.model_fields.items():
            path = f"{prefix}.{name}"
            names = {name, info.alias, info.validation_alias, info.serialization_alias}
            lowered = " ".join(str(n).lower() for n in names if isinstance(n, str))
            if any(part in lowered for part in FORBIDDEN_NAME_PARTS) and not _is_bool(
                info.annotation
            ):
                found.append(path)
            for nested in _nested_models(info.annotation):
                walk(nested, path)

    walk(model, model.__name__)
    return found
