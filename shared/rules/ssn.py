"""The SSA's rule for numbers it issues."""

from __future__ import annotations

import re

SSN_FORMAT_REASON = "must be in the format XXX-XX-XXXX"
SSN_UNISSUED_REASON = "is not a number the SSA issues"


def ssn_issuable(digits: str) -> bool:
    """Nine digits the SSA issues: area not 000, 666 or 9xx, group not 00, serial not 0000."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return not (area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000")


_SSN_DASHED = re.compile(r"([0-9]{3})-([0-9]{2})-([0-9]{4})")
_SSN_BARE = re.compile(r"([0-9]{3})([0-9]{2})([0-9]{4})")


def normalize_ssn(raw: str) -> str:
    """The nine digits of ``XXX-XX-XXXX`` or of nine bare digits; ValueError otherwise.

    The error message is one of two fixed texts and never contains the input.
    """
    text = raw.strip()
    match = _SSN_DASHED.fullmatch(text) or _SSN_BARE.fullmatch(text)
    if match is None:
        raise ValueError(SSN_FORMAT_REASON)
    digits = "".join(match.groups())
    if not ssn_issuable(digits):
        raise ValueError(SSN_UNISSUED_REASON)
    return digits
