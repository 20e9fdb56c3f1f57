"""Structured logs: SSN redaction, JSON lines with service and request id,
the standard library routed through the same chain, console output in dev.

What counts as SSN-shaped: nine digits as 3-2-4 with both separators alike
(dash, space, or none), not part of a longer run of digits. A ten-digit
number and a US phone number (3-3-4, e.g. 312-555-0199) are left alone.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from shared.servicekit.logs import (
    SSN_MASK,
    bound_context,
    causation_id,
    configure_logging,
    correlation_id,
    redact,
)

SSN = "123-45-6789"


@pytest.mark.parametrize(
    "text",
    [
        "123-45-6789",
        "123 45 6789",
        "123456789",
        "ssn=123-45-6789",
        "ssn-123-45-6789",  # a lone dash before is not a longer number
        "(123-45-6789)",
        "id:123456789.",
        "ends 123-45-6789-",
    ],
)
def test_ssn_shapes_are_masked(text: str) -> None:
    masked = redact(text)
    assert SSN_MASK in masked
    assert "6789" not in masked


@pytest.mark.parametrize(
    "text",
    [
        "1234567890",  # ten digits
        "12345678",  # eight digits
        "312-555-0199",  # a phone number is 3-3-4, not 3-2-4
        "(312) 555-0199",
        "1-123-45-6789",  # part of a longer dashed number
        "123-45-6789-0",
        "123-45 6789",  # mixed separators
        "order 12-345-6789",
        "2024-01-15",
    ],
)
def test_other_numbers_are_not_masked(text: str) -> None:
    assert redact(text) == text


def test_every_ssn_in_a_list_is_masked() -> None:
    assert redact("123-45-6789 987-65-4321, 111223333") == ", ".join(
        [f"{SSN_MASK} {SSN_MASK}", SSN_MASK]
    )


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


def _lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_service_level_and_request_id() -> None:
    buf = io.StringIO()
    configure_logging("demo", env="prod", fmt="json", stream=buf)
    log = structlog.get_logger("t")
    with bound_context(request_id="req-1", cause="evt-9"):
        assert correlation_id.get() == "req-1"
        log.info("customer_added", customer="c-1")
    log.warning("outside")
    assert correlation_id.get() is None and causation_id.get() is None

    inside, outside = _lines(buf)
    assert inside["event"] == "customer_added"
    assert inside["service"] == "demo"
    assert inside["level"] == "info"
    assert inside["request_id"] == "req-1"
    assert inside["causation_id"] == "evt-9"
    assert inside["customer"] == "c-1"
    assert "timestamp" in inside
    assert outside["level"] == "warning"
    assert "request_id" not in outside


@pytest.mark.usefixtures("restore_logging")
def test_ssn_is_masked_in_message_fields_and_nested_values() -> None:
    buf = io.StringIO()
    configure_logging("demo", env="prod", fmt="json", stream=buf)
    log = structlog.get_logger("t")
    log.info(
        f"looked up {SSN}",
        query=f"ssn={SSN}",
        payload={"person": {"ssn": "123 45 6789", "tags": ["x", "123456789"]}},
        error=ValueError(f"no match for {SSN}"),
    )
    log.info("positional %s", SSN)
    try:
        raise RuntimeError(f"failed for {SSN}")
    except RuntimeError:
        log.exception("boom")

    raw = buf.getvalue()
    assert "6789" not in raw
    first, second, third = _lines(buf)
    assert first["event"] == f"looked up {SSN_MASK}"
    assert first["query"] == f"ssn={SSN_MASK}"
    assert first["payload"] == {"person": {"ssn": SSN_MASK, "tags": ["x", SSN_MASK]}}
    assert first["error"] == f"no match for {SSN_MASK}"
    assert second["event"] == f"positional {SSN_MASK}"
    assert "RuntimeError" in third["exception"] and SSN_MASK in third["exception"]


@pytest.mark.usefixtures("restore_logging")
def test_harmless_values_keep_their_types() -> None:
    buf = io.StringIO()
    configure_logging("demo", env="prod", fmt="json", stream=buf)
    structlog.get_logger().info("counts", n=123456789, ok=True, ratio=0.5, phone="312-555-0199")
    (line,) = _lines(buf)
    assert line["n"] == 123456789 and line["ok"] is True and line["ratio"] == 0.5
    assert line["phone"] == "312-555-0199"


@pytest.mark.usefixtures("restore_logging")
def test_standard_library_goes_through_the_same_chain() -> None:
    buf = io.StringIO()
    configure_logging("demo", env="prod", fmt="json", stream=buf)
    with bound_context(request_id="req-2"):
        logging.getLogger("x").warning("ssn 123-45-6789")
        logging.getLogger("x").warning("ssn %s", "123 45 6789")
        try:
            raise KeyError(SSN)
        except KeyError:
            logging.getLogger("x.y").exception("lookup failed")
    raw = buf.getvalue()
    assert "6789" not in raw
    first, second, third = _lines(buf)
    assert first["event"] == f"ssn {SSN_MASK}"
    assert second["event"] == f"ssn {SSN_MASK}"
    for line in (first, second, third):
        assert line["service"] == "demo"
        assert line["request_id"] == "req-2"
    assert first["level"] == "warning" and first["logger"] == "x"
    assert third["level"] == "error" and "KeyError" in third["exception"]


@pytest.mark.usefixtures("restore_logging")
def test_level_filters_both_paths() -> None:
    buf = io.StringIO()
    configure_logging("demo", env="prod", level="warning", fmt="json", stream=buf)
    structlog.get_logger().info("dropped")
    logging.getLogger("x").info("dropped too")
    structlog.get_logger().error("kept")
    assert [line["event"] for line in _lines(buf)] == ["kept"]


@pytest.mark.usefixtures("restore_logging")
def test_unknown_level_falls_back_to_info() -> None:
    buf = io.StringIO()
    configure_logging("demo", env="prod", level="loud", fmt="json", stream=buf)
    structlog.get_logger().debug("dropped")
    logging.getLogger("x").info("kept")
    assert [line["event"] for line in _lines(buf)] == ["kept"]


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(("env", "fmt"), [("dev", "auto"), ("prod", "console")])
def test_console_format_is_not_json(env: str, fmt: str) -> None:
    buf = io.StringIO()
    configure_logging("demo", env=env, fmt=fmt, stream=buf)
    structlog.get_logger().info("hello", ssn=SSN)
    logging.getLogger("x").warning("stdlib %s", SSN)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
        assert "service=demo" in line
    assert "hello" in lines[0] and SSN_MASK in lines[0]
    assert "6789" not in buf.getvalue()


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("env", ["prod", "test"])
def test_auto_format_outside_dev_is_json(env: str) -> None:
    buf = io.StringIO()
    configure_logging("demo", env=env, stream=buf)
    structlog.get_logger().info("hello")
    assert _lines(buf)[0]["event"] == "hello"
