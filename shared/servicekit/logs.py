"""structlog configuration, request/causation context, and SSN redaction.

JSON lines in production, a readable console in development. The request id
(``X-Request-ID``) and the id of the event being handled ride in context
variables into every log line and every event written meanwhile.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog

# what is masked, and how (apart from structlog, for the CLI); imported from here too
from shared.servicekit.redaction import SSN_MASK as SSN_MASK
from shared.servicekit.redaction import redact as redact

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)


def _redact_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_redact_value(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_redact_value(v) for v in value)
    # Anything else (an exception, a model, a UUID) is rendered through str()
    # or repr() by the renderer: mask its text when it holds an SSN.
    for text in (str(value), repr(value)):
        if redact(text) != text:
            return redact(str(value))
    return value


def redact_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: defence in depth, never the main rule."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(value)
    return event_dict


def _add_context(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    rid = correlation_id.get()
    if rid is not None:
        event_dict.setdefault("request_id", rid)
    cause = causation_id.get()
    if cause is not None:
        event_dict.setdefault("causation_id", cause)
    return event_dict


def _add_service(service: str) -> Any:
    def add_service(
        _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict["service"] = service
        return event_dict

    return add_service


def configure_logging(
    service: str, *, env: str, level: str = "INFO", fmt: str = "auto", stream: Any = None
) -> None:
    """Configure structlog and the standard library's logging for one process."""
    use_json = fmt == "json" or (fmt == "auto" and env != "dev")
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_context,
        structlog.processors.format_exc_info,
        _add_service(service),
    ]
    structlog.configure(
        processors=[
            *shared,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    # Route the standard library (uvicorn, aiokafka, asyncpg) through the same
    # redaction and renderer.
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # uvicorn installs its own handlers before the app starts: hand its lines
    # to the root handler so they are JSON (and redacted) like every other.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for noisy in ("aiokafka", "kafka", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


@contextmanager
def bound_context(
    *, request_id: str | None = None, cause: str | None = None
) -> Iterator[None]:
    """Set the correlation and causation ids for the duration of a block."""
    tokens = []
    if request_id is not None:
        tokens.append((correlation_id, correlation_id.set(request_id)))
    if cause is not None:
        tokens.append((causation_id, causation_id.set(cause)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
