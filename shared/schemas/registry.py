"""Every event payload model, by type name, checked once at import."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import ModuleType

from shared.schemas import enrollment, groups, identity, iwds, notify, readiness
from shared.schemas.base import Event, UnknownEventType, forbidden_field_names

EVENT_MODULES: tuple[ModuleType, ...] = (
    identity, groups, enrollment, iwds, notify, readiness,
)

TOPIC_PATTERN = re.compile(r"^[a-z0-9-]+\.[a-z0-9-]+\.v\d+$")


def events_in(module: ModuleType) -> list[type[Event]]:
    """Event classes defined in ``module`` that declare their own ``TYPE``."""
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Event)
        and obj.__module__ == module.__name__
        and "TYPE" in vars(obj)
    ]


def contract_problems(models: Iterable[type[Event]]) -> list[str]:
    """What is wrong with a set of event models (empty when they are fine)."""
    problems: list[str] = []
    seen: dict[str, type[Event]] = {}
    for model in models:
        name = model.__name__
        if model.TYPE in seen:
            problems.append(
                f"type {model.TYPE!r} registered twice: {seen[model.TYPE].__name__} and {name}"
            )
        seen[model.TYPE] = model
        if not TOPIC_PATTERN.match(model.TOPIC):
            problems.append(
                f"{name}: topic {model.TOPIC!r} is not <producer>.<aggregate>.v<N>"
            )
        if model.VERSION < 1 or not model.TOPIC.endswith(f".v{model.VERSION}"):
            problems.append(
                f"{name}: topic {model.TOPIC!r} does not end in .v{model.VERSION}"
            )
        key = model.model_fields.get(getattr(model, "KEY_FIELD", ""))
        if key is None or not key.is_required():
            problems.append(f"{name}: KEY_FIELD must name a required field")
        problems.extend(
            f"{path}: events may not carry an SSN or password field"
            for path in forbidden_field_names(model)
        )
    return problems


def build_registry(
    modules: Iterable[ModuleType] = EVENT_MODULES,
) -> dict[str, type[Event]]:
    """Type name -> model for every event in ``modules``; raises on any contract problem."""
    models = [model for module in modules for model in events_in(module)]
    problems = contract_problems(models)
    if problems:
        raise RuntimeError("invalid event contracts:\n  " + "\n  ".join(problems))
    return {model.TYPE: model for model in models}


REGISTRY: dict[str, type[Event]] = build_registry()


def model_for(
    type_name: str, registry: Mapping[str, type[Event]] = REGISTRY
) -> type[Event]:
    """The payload model of an event type; ``UnknownEventType`` if there is none."""
    try:
        return registry[type_name]
    except KeyError:
        raise UnknownEventType(type_name) from None


def topic_for(type_name: str, registry: Mapping[str, type[Event]] = REGISTRY) -> str:
    """The topic an event type is published to."""
    return model_for(type_name, registry).TOPIC


def all_topics(registry: Mapping[str, type[Event]] = REGISTRY) -> list[str]:
    """Every topic, sorted, each once."""
    return sorted({model.TOPIC for model in registry.values()})
