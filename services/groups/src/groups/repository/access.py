"""Who reaches which customer and which group: owners, program staff, IWDS grants.

A customer has a handful of memberships; the check reads them through
``memberships_customer``, each group by primary key, and the staff member's owner
rows, program rows and IWDS grants by index: a few lookups, however many groups
and memberships there are.
"""

# ruff: noqa: S608 - the SQL is built from module constants; values are always $n parameters

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.servicekit.db import Connection

# the staff member's IWDS grants, through the workNet username of the staff directory
_GRANTS = """
    gr AS (
        SELECT a.iwds_staff_id, a.level, a.lwia_code, a.office_code
        FROM staff s JOIN iwds_grants a ON a.worknet_username = lower(s.username)
        WHERE s.id = $2 AND s.status = 'active')
"""

# does grant ``gr`` cover LWIA-kind group ``g``?
_GRANT_COVERS = """
    (gr.level = 'statewide'
     OR (gr.level = 'lwia' AND g.lwia_code = gr.lwia_code)
     OR (gr.level = 'office' AND g.lwia_code = gr.lwia_code AND g.office_code = gr.office_code)
     OR (gr.level = 'caseload' AND g.caseload_of = gr.iwds_staff_id
         AND (gr.lwia_code IS NULL OR g.lwia_code = gr.lwia_code)))
"""

_REASON = """
    CASE gr.level WHEN 'statewide' THEN 'IWDS access: statewide'
        WHEN 'lwia' THEN 'IWDS access: LWIA ' || gr.lwia_code
        WHEN 'office' THEN 'IWDS access: LWIA ' || gr.lwia_code || ' office ' || gr.office_code
        ELSE 'IWDS access: own caseload' END
"""

_CUSTOMER_PATHS = f"""
WITH mg AS (
    SELECT g.id, g.kind, g.name, g.lwia_code, g.office_code, g.caseload_of, g.program,
           g.feed_key
    FROM memberships m JOIN groups g ON g.id = m.group_id
    WHERE m.customer_id = $1),
{_GRANTS}
SELECT g.id AS group_id, g.kind, g.name,
       CASE o.role WHEN 'owner' THEN 'owner of the group' ELSE 'co-owner of the group' END
         AS reason
  FROM mg g JOIN group_owners o ON o.group_id = g.id AND o.staff_id = $2
UNION ALL
SELECT g.id, g.kind, g.name, 'authorized for program ' || g.program
  FROM mg g JOIN program_staff p ON p.staff_id = $2 AND p.program = g.program
  WHERE g.kind = 'program' AND g.feed_key IS NOT NULL
UNION ALL
SELECT DISTINCT ON (g.id) g.id, g.kind, g.name, {_REASON}
  FROM mg g JOIN gr ON {_GRANT_COVERS}
  WHERE g.kind = 'lwia' AND g.feed_key IS NOT NULL
UNION ALL
SELECT NULL, 'account', 'account created by this staff member', 'created the account'
  FROM customers c WHERE c.id = $1 AND c.created_by = $2
"""


async def customer_paths(conn: Connection, customer_id: UUID, staff_id: UUID
                         ) -> list[asyncpg.Record]:
    return await conn.fetch(_CUSTOMER_PATHS, customer_id, staff_id)


_GROUP_REACH = f"""
WITH {_GRANTS.strip()}
SELECT
  (SELECT o.role FROM group_owners o WHERE o.staff_id = $2 AND o.group_id = ANY($1::uuid[])
    ORDER BY o.role DESC LIMIT 1) AS owner_role,
  ($3::text IS NOT NULL AND EXISTS (
     SELECT 1 FROM program_staff p WHERE p.staff_id = $2 AND p.program = $3)) AS program,
  (SELECT {_REASON} FROM gr, (SELECT $4::text AS lwia_code, $5::text AS office_code,
                                     $6::text AS caseload_of) g
    WHERE $7 AND {_GRANT_COVERS} LIMIT 1) AS iwds
"""


async def group_reach(conn: Connection, group: asyncpg.Record, staff_id: UUID
                      ) -> tuple[str | None, bool, str | None]:
    """(owner role over the group or an ancestor, program staff, IWDS reason)."""
    row = await conn.fetchrow(
        _GROUP_REACH, list(group["path"]), staff_id,
        group["program"] if group["kind"] == "program" else None,
        group["lwia_code"], group["office_code"], group["caseload_of"],
        group["kind"] == "lwia")
    assert row is not None
    return row["owner_role"], bool(row["program"]), row["iwds"]


_REACHED_GROUPS = f"""
WITH {_GRANTS.strip()}
SELECT g.id, g.kind, g.name, g.parent_id, g.depth, g.join_code, g.owner_id
FROM groups g
WHERE ($3::text IS NULL OR g.kind = $3)
  AND ($4::text IS NULL OR (g.name, g.id) > ($4, $5::uuid))
  AND (EXISTS (SELECT 1 FROM group_owners o WHERE o.staff_id = $2 AND o.group_id = ANY(g.path))
       OR (g.kind = 'program' AND EXISTS (
             SELECT 1 FROM program_staff p WHERE p.staff_id = $2 AND p.program = g.program))
       OR (g.kind = 'lwia' AND EXISTS (SELECT 1 FROM gr WHERE {_GRANT_COVERS}))
       OR $6)
ORDER BY g.name, g.id
LIMIT $1
"""


async def reached_groups(conn: Connection, staff_id: UUID, *, kind: str | None,
                         after: tuple[str, UUID] | None, limit: int, admin: bool
                         ) -> list[asyncpg.Record]:
    return await conn.fetch(_REACHED_GROUPS, limit, staff_id, kind,
                            after[0] if after else None, after[1] if after else None, admin)


# -- program staff -------------------------------------------------------------------

async def authorize_program(conn: Connection, program: str, staff_id: UUID,
                            now: datetime) -> None:
    await conn.execute("INSERT INTO program_staff (program, staff_id, since)"
                       " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", program, staff_id, now)


async def revoke_program(conn: Connection, program: str, staff_id: UUID) -> None:
    await conn.execute("DELETE FROM program_staff WHERE program = $1 AND staff_id = $2",
                       program, staff_id)


# -- IWDS ----------------------------------------------------------------------------

async def replace_grants(conn: Connection, iwds_staff_id: str, username: str | None,
                         grants: Sequence[dict[str, Any]]) -> None:
    await conn.execute("DELETE FROM iwds_grants WHERE iwds_staff_id = $1", iwds_staff_id)
    if grants:
        await conn.executemany(
            "INSERT INTO iwds_grants (iwds_staff_id, worknet_username, level, lwia_code,"
            " office_code) VALUES ($1, $2, $3, $4, $5)",
            [(iwds_staff_id, username, g["level"], g["lwia_code"], g["office_code"])
             for g in grants])


async def upsert_record(conn: Connection, *, person_id: str, account_id: UUID | None,
                        lwia_code: str, office_code: str | None, case_manager: str | None,
                        status: str, changed_at: datetime) -> UUID | None:
    """Keep the record; the account it named before (if another), to re-place it."""
    before = await conn.fetchval(
        "SELECT account_id FROM iwds_records WHERE iwds_person_id = $1 FOR UPDATE", person_id)
    await conn.execute(
        "INSERT INTO iwds_records (iwds_person_id, account_id, lwia_code, office_code,"
        " case_manager, status, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (iwds_person_id) DO UPDATE SET account_id = EXCLUDED.account_id,"
        " lwia_code = EXCLUDED.lwia_code, office_code = EXCLUDED.office_code,"
        " case_manager = EXCLUDED.case_manager, status = EXCLUDED.status,"
        " changed_at = EXCLUDED.changed_at",
        person_id, account_id, lwia_code, office_code, case_manager, status, changed_at)
    return before if isinstance(before, UUID) else None


async def delete_record(conn: Connection, person_id: str) -> UUID | None:
    account = await conn.fetchval(
        "DELETE FROM iwds_records WHERE iwds_person_id = $1 RETURNING account_id", person_id)
    return account if isinstance(account, UUID) else None


async def records_of(conn: Connection, account_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT lwia_code, office_code, case_manager FROM iwds_records"
        " WHERE account_id = $1", account_id)


async def feed_memberships(conn: Connection, customer_id: UUID) -> list[asyncpg.Record]:
    """The customer's memberships of feed-made LWIA groups."""
    return await conn.fetch(
        "SELECT g.id, g.feed_key FROM memberships m JOIN groups g ON g.id = m.group_id"
        " WHERE m.customer_id = $1 AND g.kind = 'lwia' AND g.feed_key IS NOT NULL",
        customer_id)
