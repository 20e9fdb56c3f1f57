"""The gateway's pure rules: sealing, which proxied calls are rate-limited, the Add
Customer form's body, and API problems turned into the page's error summary."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag

from gateway.domain import (
    ADD_CUSTOMER_FIELDS,
    Sealer,
    add_customer_body,
    csrf_matches,
    field_problems,
    form_echo,
    limited_scope,
)


def test_sealed_values_open_only_with_their_key_and_context() -> None:
    sealer = Sealer(os.urandom(32))
    sealed = sealer.seal(b"token", b"session-1")
    assert b"token" not in sealed
    assert sealer.open(sealed, b"session-1") == b"token"
    with pytest.raises(InvalidTag):
        sealer.open(sealed, b"session-2")  # a row's tokens cannot be moved to another
    with pytest.raises(InvalidTag):
        Sealer(os.urandom(32)).open(sealed, b"session-1")
    with pytest.raises(ValueError):
        Sealer(b"short")


@pytest.mark.parametrize(("service", "path", "method", "limited"), [
    ("identity", "v1/auth/token", "POST", True),
    ("identity", "/v1/registrations", "POST", True),
    ("identity", "v1/password-recovery", "POST", True),
    ("identity", "v1/password-recovery/complete", "POST", True),
    ("groups", "v1/join", "POST", True),
    ("groups", "v1/groups/abc/join", "POST", True),
    ("identity", "v1/auth/token", "GET", False),
    ("identity", ".well-known/jwks.json", "GET", False),
    ("enrollment", "v1/returning-citizens", "POST", False),
    ("identity", "v1/auth/tokenx", "POST", False),
])
def test_only_the_anonymous_doors_are_rate_limited(
    service: str, path: str, method: str, limited: bool
) -> None:
    assert (limited_scope(service, path, method) is not None) is limited


def test_the_form_becomes_the_api_body_and_the_echo_drops_the_ssn() -> None:
    body = add_customer_body({
        "csrf_token": "t", "idoc_number": " R12345 ", "ssn": "219-09-9999", "first_name": "",
        "counties_of_commitment": ["cook", "will"], "offenses": "burglary"})
    assert body["idoc_number"] == "R12345"
    assert "first_name" not in body and "csrf_token" not in body
    assert body["counties_of_commitment"] == ["cook", "will"]
    assert body["offenses"] == ["burglary"]
    echo = form_echo(body)
    assert "ssn" not in echo and "219-09-9999" not in str(echo)


def test_problems_name_the_fields_by_their_labels() -> None:
    found = field_problems({"errors": [
        {"field": "idoc_number_confirmation", "reason": "must equal idoc_number"},
        {"field": "counties_of_commitment.0", "reason": "is not a county"},
        {"field": "mystery", "reason": "is odd"}, "not an object"]}, ADD_CUSTOMER_FIELDS)
    assert [(p.field, p.message) for p in found] == [
        ("idoc_number_confirmation", "Confirm IDOC Number must equal IDOC Number"),
        ("counties_of_commitment", "County of Commitment is not a county"),
        ("mystery", "Mystery is odd"),
    ]


def test_csrf_tokens_must_match_and_be_present() -> None:
    assert csrf_matches("abc", "abc")
    assert not csrf_matches("abc", "abd")
    assert not csrf_matches(None, None) and not csrf_matches("", "")
