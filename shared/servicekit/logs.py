"""structlog configuration, request/causation context, and SSN redaction.

JSON lines in production, a readable console in development. The request id
(``X-Request-ID``) and the id of the event being handled ride in context
variables into every log line and every event written meanwhile.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)

# Nine digits shaped like an SSN: 123-45-6789, 123 45 6789 or 123456789, not
# inside a longer run of digits.
_SSN = re.compile(r"(?<![\d-])\d{3}([- ]?)\d{2}\1\d{4}(?![\d-])")
SSN_MASK = "***-**-****"


def redact(text: str) -> str:
    """Mask anything shaped like a Social Security number."""
    return _SSN.sub(SSN_MASK, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
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


def configure_logging(
    service: str, *, env: str, level: str = "INFO", fmt: str = "auto", stream: Any = None
) -> None:
    """Configure structlog and the standard library's logging for one process."""
    use_json = fmt == "json" or (fmt == "auto" and env != "dev")
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
    ]
    structlog.configure(
        processors=[
            *shared,
            lambda _l, _n, ed: {**ed, "service": service},
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    # Route the standard library (uvicorn, aiokafka, asyncpg) through the same
    # redaction and renderer.
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):
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
