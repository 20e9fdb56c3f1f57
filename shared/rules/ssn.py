"""The SSA's rule for numbers it issues."""

from __future__ import annotations

SSN_FORMAT_REASON = "must be in the format XXX-XX-XXXX"
SSN_UNISSUED_REASON = "is not a number the SSA issues"


def ssn_issuable(digits: str) -> bool:
    """Nine digits the SSA issues: area not 000, 666 or 9xx, group not 00, serial not 0000."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return not (area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000")
