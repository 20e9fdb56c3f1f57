"""The issue's journey: staff made by the CLI, a customer with no email, forced
password change, sign-in again, staff reset, and the cycle again."""

from __future__ import annotations

import asyncio

import asyncpg
from typer.testing import CliRunner

from shared.cli.main import app as csc
from shared.schemas.envelope import Envelope
from tests.integration.identity.conftest import IdentityApp, bearer

STAFF_PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "a long and memorable passphrase"


async def make_staff(username: str = "rcaseworker", role: str = "reentry") -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        csc, ["identity", "create-staff", "--username", username, "--role", role,
              "--first-name", "Robin", "--last-name", "Case", "--password-stdin"],
        input=STAFF_PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert f"staff account {username} created" in result.output


async def test_staff_customer_password_cycle(identity: IdentityApp, pool: asyncpg.Pool) -> None:
    await make_staff()
    c = identity.client
    staff = await identity.token("RCaseWorker", STAFF_PASSWORD)  # usernames ignore case

    r = await c.post("/v1/customers", headers=bearer(staff), json={
        "first_name": "Marcus", "last_name": "O'Neil", "date_of_birth": "1988-04-12",
        "ssn": "219-09-9999", "identifiers": [{"kind": "idoc_number", "value": "r12345"}],
    })
    assert r.status_code == 201, r.text
    created = r.json()
    username, temporary = created["username"], created["temporary_password"]
    assert username.startswith("m") and len(temporary) >= 15

    # The customer signs in with the temporary password: one thing allowed.
    first = await c.post("/v1/auth/token", data={"username": username, "password": temporary})
    assert first.status_code == 200
    assert first.json()["password_change_required"] is True
    assert "refresh_token" not in first.json()
    restricted = first.json()["access_token"]
    me = await c.get("/v1/me", headers=bearer(restricted))
    assert me.status_code == 403
    assert me.json()["type"].endswith("/password-change-required")

    r = await c.post("/v1/me/password", headers=bearer(restricted), json={
        "current_password": temporary, "new_password": NEW_PASSWORD})
    assert r.status_code == 204, r.text

    # The temporary password is gone; the new one signs in normally.
    assert (await identity.sign_in(username, temporary)).status_code == 401
    normal = await identity.sign_in(username, NEW_PASSWORD)
    assert normal.status_code == 200 and normal.json()["password_change_required"] is False
    me = await c.get("/v1/me", headers=bearer(normal.json()["access_token"]))
    assert me.status_code == 200
    body = me.json()
    assert body["username"] == username and body["ssn_last4"] == "9999"
    assert "219-09-9999" not in me.text and "219099999" not in me.text

    # Staff reset: a new temporary password, earlier sessions end.
    r = await c.post(f"/v1/customers/{created['id']}/password-reset", headers=bearer(staff))
    assert r.status_code == 200
    second_temporary = r.json()["temporary_password"]
    assert second_temporary != temporary
    assert (await c.get("/v1/me", headers=bearer(normal.json()["access_token"]))).status_code == 401
    assert (await identity.sign_in(username, NEW_PASSWORD)).status_code == 401
    again = await identity.sign_in(username, second_temporary)
    assert again.status_code == 200 and again.json()["password_change_required"] is True

    # Events: created, reset; no SSN, no password anywhere in them.
    rows = await pool.fetch("SELECT event_type, value FROM outbox ORDER BY id")
    types = [r["event_type"] for r in rows]
    assert types.count("CustomerAccountCreated") == 1
    assert "PasswordResetByStaff" in types and "PasswordChanged" in types
    assert "StaffAccountCreated" in types
    for row in rows:
        text = bytes(row["value"]).decode()
        for secret in ("219-09-9999", "219099999", temporary, second_temporary, NEW_PASSWORD,
                       STAFF_PASSWORD):
            assert secret not in text
        Envelope.from_bytes(bytes(row["value"])).parse_payload()
    audit = [r["action"] for r in await pool.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert audit[:3] == ["staff.create", "customer.create", "password.change"]
    assert "password.reset" in audit


async def test_customer_token_on_a_staff_route_is_403(identity: IdentityApp) -> None:
    await make_staff()
    staff = await identity.token("rcaseworker", STAFF_PASSWORD)
    r = await identity.client.post("/v1/customers", headers=bearer(staff), json={
        "first_name": "Ann", "last_name": "Lee", "date_of_birth": "1990-01-02"})
    username, temporary = r.json()["username"], r.json()["temporary_password"]
    restricted = await identity.token(username, temporary)
    await identity.client.post("/v1/me/password", headers=bearer(restricted), json={
        "current_password": temporary, "new_password": NEW_PASSWORD})
    customer = await identity.token(username, NEW_PASSWORD)
    r = await identity.client.post("/v1/customers", headers=bearer(customer), json={
        "first_name": "X", "last_name": "Y", "date_of_birth": "1990-01-02"})
    assert r.status_code == 403
    assert (await identity.client.get("/v1/customers/" + "0" * 8 + "-0000-0000-0000-"
                                      + "0" * 12)).status_code == 401
