"""Opaque cursors for keyset-paged lists.

A cursor carries the sort key of the last row of a page (e.g. ``[0.97, 1234]``)
as URL-safe base64 JSON. It is opaque to callers, not secret: never put in it
anything a URL must not carry.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from shared.servicekit.errors import FieldError, InvalidInput

MAX_CURSOR_LENGTH = 512


class BadCursor(ValueError):
    """The cursor was not made by :func:`encode_cursor` (or was cut)."""


def encode_cursor(*key: Any) -> str:
    raw = json.dumps(list(key), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The sort key of ``cursor``; BadCursor unless it is a list of ``arity`` values."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise BadCursor("is too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadCursor("is not a cursor from this list") from None
    if not isinstance(key, list) or len(key) != arity:
        raise BadCursor("is not a cursor from this list")
    if not all(isinstance(k, str | int | float) and not isinstance(k, bool) for k in key):
        raise BadCursor("is not a cursor from this list")
    return key


def cursor_key(
    cursor: str, arity: int, *, field: str = "cursor",
    reason: str = "is not a cursor from this list",
) -> list[Any]:
    """:func:`decode_cursor` for a use case: a bad cursor is InvalidInput naming ``field``."""
    try:
        return decode_cursor(cursor, arity)
    except BadCursor:
        raise InvalidInput([FieldError(field, reason)]) from None
