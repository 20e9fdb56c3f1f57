"""Reading IWDS feeds: formats, header, per-row validation, SSN dropping."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, date, datetime

import pytest

from sync_iwds.domain import (
    PARTICIPANT_COLUMNS,
    BadFile,
    Decoder,
    Grant,
    Parser,
    Participant,
    Rejection,
    exit_code,
    should_hold,
    ssn_shaped,
)

HEADER = ",".join(PARTICIPANT_COLUMNS)
GOOD = "P1,,07,OF1,S9,Ann,Lee,1990-04-01,WIOA,active,,2026-11-01T10:00:00Z"


def parse(feed: str, text: str | bytes, chunk: int = 7) -> list[object]:
    data = text.encode() if isinstance(text, str) else text
    dec, parser = Decoder(), Parser(feed)  # type: ignore[arg-type]
    out: list[object] = []
    for i in range(0, len(data), chunk):
        out += parser.lines(dec.feed(data[i:i + chunk]))
    out += parser.lines(dec.end())
    last = parser.finish()
    if last is not None:
        out.append(last)
    return out


def test_a_good_row_is_read_with_typed_fields() -> None:
    [row] = parse("participants", f"{HEADER}\n{GOOD}\n")
    assert isinstance(row, Participant)
    assert row.iwds_person_id == "P1" and row.lwia_code == "07" and row.status == "active"
    assert row.date_of_birth == date(1990, 4, 1) and row.worknet_account_id is None
    assert row.updated_at == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert row.line == 2


def test_columns_in_any_order_and_extra_columns_ignored() -> None:
    cols = [*reversed(PARTICIPANT_COLUMNS), "favourite_colour"]
    vals = [*reversed(GOOD.split(",")), "blue"]
    [row] = parse("participants", ",".join(cols) + "\n" + ",".join(vals) + "\n")
    [expected] = parse("participants", f"{HEADER}\n{GOOD}\n")
    assert row == expected


def test_ssn_column_is_dropped_and_never_in_the_row() -> None:
    text = f"ssn,{HEADER}\n123-45-6789,{GOOD}\n"
    dec, parser = Decoder(), Parser("participants")
    rows = list(parser.lines(dec.feed(text.encode()) + dec.end()))
    assert parser.dropped_columns == ["ssn"]
    assert "123-45-6789" not in repr(rows) and "123456789" not in repr(rows)
    assert isinstance(rows[0], Participant)


def test_ssn_shaped_values_in_known_columns_are_dropped() -> None:
    row_text = "P1,,07,OF1,S9,123-45-6789,Lee,1990-04-01,WIOA,active,,2026-11-01T10:00:00Z"
    [row] = parse("participants", f"{HEADER}\n{row_text}\n")
    assert isinstance(row, Participant) and row.first_name is None
    assert "6789" not in repr(row)


def test_an_ssn_shaped_id_rejects_the_row_without_echoing_it() -> None:
    bad = GOOD.replace("P1", "123-45-6789", 1)
    [rej] = parse("participants", f"{HEADER}\n{bad}\n")
    assert isinstance(rej, Rejection) and rej.iwds_id == "" and "6789" not in rej.reason


def test_ssn_shape() -> None:
    assert ssn_shaped("123-45-6789") and ssn_shaped("x 123 45 6789 y") and ssn_shaped("123456789")
    assert not ssn_shaped("123456789", is_id=True)
    assert not ssn_shaped("1234-56-7890") and not ssn_shaped("Ann")


def test_missing_required_column_refuses_the_file_naming_it() -> None:
    header = HEADER.replace(",status", "")
    with pytest.raises(BadFile, match="status"):
        parse("participants", header + "\n")


def test_empty_file_is_refused() -> None:
    with pytest.raises(BadFile, match="empty"):
        parse("participants", "")


@pytest.mark.parametrize(("row", "reason"), [
    (GOOD.replace("P1", "", 1), "missing iwds_person_id"),
    (GOOD.replace("1990-04-01", "01/04/1990"), "bad date_of_birth"),
    (GOOD.replace(",active,", ",sleeping,"), "unknown status"),
    (GOOD.replace(",07,", ",27,"), "unknown lwia_code"),
    (GOOD.replace(",07,", ",,"), "missing lwia_code"),
    (GOOD.replace("2026-11-01T10:00:00Z", "yesterday"), "bad updated_at"),
    (GOOD.replace("2026-11-01T10:00:00Z", ""), "missing updated_at"),
    (GOOD.replace("P1,,", "P1,not-a-uuid,"), "bad worknet_account_id"),
    (GOOD.replace(",active,,", ",exited,2026-13-01,"), "bad exit_date"),
])
def test_bad_rows_carry_line_and_reason(row: str, reason: str) -> None:
    out = parse("participants", f"{HEADER}\n{GOOD.replace('P1', 'P0', 1)}\n\n{row}\n")
    assert isinstance(out[0], Participant)
    rej = out[1]
    assert isinstance(rej, Rejection) and rej.line == 4 and reason in rej.reason


def test_duplicate_id_in_one_file() -> None:
    out = parse("participants", f"{HEADER}\n{GOOD}\n{GOOD}\n")
    assert isinstance(out[0], Participant)
    assert out[1] == Rejection(3, "P1", "duplicate iwds_person_id in this file (first on line 2)")


def test_lwia_one_digit_is_padded_and_status_case_folded() -> None:
    text = GOOD.replace(",07,", ",7,").replace("active", "Active")
    [row] = parse("participants", f"{HEADER}\n{text}\n")
    assert isinstance(row, Participant) and row.lwia_code == "07" and row.status == "active"


def test_quoted_field_over_two_lines_keeps_line_numbers() -> None:
    row = GOOD.replace("Ann", '"Ann\nMarie"')
    out = parse("participants", f"{HEADER}\n{row}\n{GOOD.replace('P1', 'P2', 1)}\n")
    assert isinstance(out[0], Participant) and out[0].first_name == "Ann\nMarie"
    assert out[0].line == 2 and isinstance(out[1], Participant) and out[1].line == 4


def test_gzip_and_crlf() -> None:
    data = gzip.compress(f"{HEADER}\r\n{GOOD}\r\n".encode())
    [row] = parse("participants", data, chunk=5)
    assert isinstance(row, Participant) and row.updated_at.year == 2026


def test_truncated_gzip_is_refused() -> None:
    data = gzip.compress((f"{HEADER}\n" + f"{GOOD}\n" * 50).encode())
    with pytest.raises(BadFile, match="gzip"):
        parse("participants", data[: len(data) // 2])


def test_not_utf8_is_refused() -> None:
    with pytest.raises(BadFile, match="UTF-8"):
        parse("participants", f"{HEADER}\n".encode() + b"\xff\xfe\xfa\n")


def test_ndjson_with_extra_and_ssn_keys() -> None:
    acct = uuid.uuid4()
    rec = {"iwds_person_id": "P1", "worknet_account_id": str(acct), "lwia_code": "3",
           "status": "exited", "exit_date": "2026-10-01", "updated_at": "2026-11-01T00:00:00",
           "ssn": "123-45-6789", "other": 1}
    text = json.dumps(rec) + "\n" + "[1,2]\n" + json.dumps({"lwia_code": "01"}) + "\n"
    out = parse("participants", text)
    assert isinstance(out[0], Participant) and out[0].worknet_account_id == acct
    assert out[0].lwia_code == "03" and out[0].exit_date == date(2026, 10, 1)
    assert out[1] == Rejection(2, "", "not a JSON object")
    assert isinstance(out[2], Rejection) and out[2].reason == "missing iwds_person_id"
    assert "6789" not in repr(out)


def test_hash_ignores_updated_at_but_not_content() -> None:
    a, b, c = parse("participants", f"{HEADER}\n{GOOD}\n"
                    f"{GOOD.replace('P1', 'P2', 1)}\n"
                    f"{GOOD.replace('P1', 'P3', 1).replace('T10', 'T11')}\n")
    assert isinstance(a, Participant) and isinstance(b, Participant)
    assert isinstance(c, Participant)
    [a2] = parse("participants", f"{HEADER}\n{GOOD.replace('T10', 'T12')}\n")
    [a3] = parse("participants", f"{HEADER}\n{GOOD.replace('OF1', 'OF2')}\n")
    assert isinstance(a2, Participant) and isinstance(a3, Participant)
    assert a.hash == a2.hash and a.hash != a3.hash and a.hash != b.hash


STAFF = "iwds_staff_id,worknet_username,lwia_code,office_code,access_level"


def test_staff_grants_and_their_rules() -> None:
    text = (f"{STAFF}\nS1,jdoe,07,,lwia\nS1,jdoe,07,OF1,office\nS1,jdoe,,,statewide\n"
            "S2,,,,caseload\nS3,,07,,office\nS4,,,,boss\nS1,jdoe,7,,lwia\nS5,,,,lwia\n")
    out = parse("staff-access", text)
    assert out[0] == Grant(2, "S1", "jdoe", "lwia", "07", None)
    assert out[1] == Grant(3, "S1", "jdoe", "office", "07", "OF1")
    assert out[2] == Grant(4, "S1", "jdoe", "statewide", None, None)
    assert out[3] == Grant(5, "S2", None, "caseload", None, None)
    assert isinstance(out[4], Rejection) and "missing office_code" in out[4].reason
    assert isinstance(out[5], Rejection) and "unknown access_level" in out[5].reason
    assert isinstance(out[6], Rejection) and "duplicate grant" in out[6].reason
    assert isinstance(out[7], Rejection) and out[7].reason == "missing lwia_code"


def test_staff_header_missing_level() -> None:
    with pytest.raises(BadFile, match="access_level"):
        parse("staff-access", "iwds_staff_id,worknet_username,lwia_code,office_code\n")


def test_hold_rule_and_exit_codes() -> None:
    assert not should_hold(5, 100, 0.05) and should_hold(6, 100, 0.05)
    assert not should_hold(10, 0, 0.05)
    assert (exit_code("done"), exit_code("held"), exit_code("refused")) == (0, 3, 1)
