"""The groups service's rules without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from groups import domain
from shared.servicekit.errors import InvalidInput

NOW = datetime(2026, 3, 2, 15, tzinfo=UTC)


def test_passcodes_compare_ignoring_case_spaces_and_dashes() -> None:
    code = domain.new_passcode()
    assert len(code) == 8
    assert domain.passcode_matches(code, f" {code[:4].lower()}-{code[4:]} ")
    assert not domain.passcode_matches(code, code[:-1])
    assert not domain.passcode_matches(None, code)


def test_join_codes_are_url_safe() -> None:
    code = domain.new_join_code()
    assert domain.valid_join_code(code)
    assert not domain.valid_join_code("../etc")
    assert not domain.valid_join_code("a" * 40)


def test_depth_limit_is_eight() -> None:
    assert domain.child_depth(7) == 8
    with pytest.raises(InvalidInput) as err:
        domain.child_depth(8)
    assert err.value.errors[0].field == "parent_id"


def test_feed_places_a_record_in_lwia_office_and_caseload() -> None:
    groups = domain.feed_groups(domain.Placement("12", "03", "S77"))
    assert [g.key for g in groups] == ["lwia:12", "office:12/03", "caseload:12/03/S77"]
    assert groups[2].parent_key == "office:12/03"
    bare = domain.feed_groups(domain.Placement("12", None, "S77"))
    assert [g.parent_key for g in bare] == [None, "lwia:12"]
    assert domain.feed_groups(domain.Placement("5", None, None))[0].name == "LWIA 5"


def test_message_limits() -> None:
    assert domain.check_message("  Hi  ", "body") == ("Hi", "body")
    with pytest.raises(InvalidInput) as err:
        domain.check_message("x" * 201, "y" * 20_001)
    assert {e.field for e in err.value.errors} == {"subject", "body"}
    with pytest.raises(InvalidInput):
        domain.check_message("two\nlines", "b")


def test_chunks_cover_every_recipient_once() -> None:
    ids = [uuid.uuid4() for _ in range(12_345)]
    parts = domain.chunks(ids, 5000)
    assert [len(p) for p in parts] == [5000, 5000, 2345]
    assert domain.chunk_count(12_345, 5000) == 3
    assert domain.chunk_count(0, 5000) == 1


def test_pending_invitation_past_expiry_reads_expired() -> None:
    assert domain.invitation_status("pending", NOW, NOW) == "expired"
    assert domain.invitation_status("pending", NOW + timedelta(seconds=1), NOW) == "pending"
    assert domain.invitation_status("revoked", NOW, NOW) == "revoked"


def test_throttle_after_five_failures_in_fifteen_minutes() -> None:
    four = [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4)]
    assert domain.throttle_retry_after(four, NOW) is None
    five = [*four, NOW - timedelta(minutes=10)]
    wait = domain.throttle_retry_after(five, NOW)
    assert wait is not None and 290 <= wait <= 302
    old = [NOW - timedelta(minutes=16)] * 10
    assert domain.throttle_retry_after(old, NOW) is None
