"""The kit's one cursor helper and the rules two services share (shared/rules)."""

from __future__ import annotations

from datetime import date

import pytest

from shared.rules.dates import TOO_OLD_REASON, date_of_birth_reason, years_before
from shared.rules.ssn import ssn_issuable
from shared.rules.text import has_control_characters
from shared.servicekit.errors import InvalidInput
from shared.servicekit.paging import BadCursor, cursor_key, decode_cursor, encode_cursor


def test_a_cursor_round_trips_and_a_bad_one_names_its_field() -> None:
    assert decode_cursor(encode_cursor(0.97, 1234), 2) == [0.97, 1234]
    for bad in ("", "!!!", "x" * 600, encode_cursor([1], 2), encode_cursor(True, 2),
                encode_cursor(None, 2), encode_cursor(1)):
        with pytest.raises(BadCursor):
            decode_cursor(bad, 2)
        with pytest.raises(InvalidInput) as caught:
            cursor_key(bad, 2, field="after", reason="is not ours")
        assert [(e.field, e.reason) for e in caught.value.errors] == [("after", "is not ours")]


def test_years_before_and_the_date_of_birth_limits() -> None:
    assert years_before(date(2028, 2, 29), 120) == date(1908, 2, 29)
    assert years_before(date(2028, 2, 29), 1) == date(2027, 2, 28)
    today = date(2026, 12, 1)
    assert date_of_birth_reason(date(1906, 12, 1), today) is None
    assert date_of_birth_reason(date(1906, 11, 30), today) == TOO_OLD_REASON
    assert date_of_birth_reason(date(2026, 12, 2), today) == "must not be in the future"
    assert date_of_birth_reason(today, today) is None


def test_the_ssa_issuable_rule() -> None:
    assert ssn_issuable("219099999")
    for digits in ("000123456", "666123456", "900123456", "219009999", "219090000"):
        assert not ssn_issuable(digits), digits


def test_control_characters_and_bidi_overrides() -> None:
    assert not has_control_characters("Zoë O'Neil-Núñez")
    for text in ("a\x00b", "tab\there", "a\u202eb", "a\u2066b", "\ud800"):
        assert has_control_characters(text), repr(text)
