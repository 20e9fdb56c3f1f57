"""Checks on free text people type (names, notes)."""

from __future__ import annotations

import unicodedata

# Bidirectional overrides and isolates let a name display differently from what it is.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
CONTROL_REASON = "must not contain control characters"


def has_control_characters(text: str) -> bool:
    """Control, surrogate, private-use or unassigned characters, or a bidi override."""
    if text.isascii() and text.isprintable():  # the common case: nothing to look for
        return False
    return any(
        unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") or c in BIDI_CONTROLS for c in text
    )
