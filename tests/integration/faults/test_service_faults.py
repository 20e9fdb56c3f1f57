"""identity and enrollment (real processes, real PostgreSQL, a real broker) survive the
faults of issue 12 part B while staff keep writing: nothing lost, nothing applied twice,
each subject's events applied in order, no dead letter.

The writes are both services' Add Customer: identity's makes an account
(CustomerAccountCreated, which enrollment applies), enrollment's makes an account
through identity and an enrollment (CustomerEnrolled, which identity applies).
"""

from __future__ import annotations

import asyncio

import asyncpg

from tests.integration.faults.conftest import FaultStack
from tests.support.kit import wait_until


async def _applied_by(stack: FaultStack, consumer: str) -> int:
    conn = await asyncpg.connect(stack.dsn[consumer])
    try:
        return int(await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1",
                                       consumer))
    finally:
        await conn.close()


async def test_the_checker_counts_a_quiet_run_as_clean(fault_stack: FaultStack) -> None:
    s = fault_stack
    await s.write_n(6)
    result = await s.settled()
    assert result.clean, result
    # 2 staff + 6 accounts reach enrollment; 3 enrollments reach identity
    assert result.applied == 2 + 6 + 3 and result.accounts == 6


async def test_broker_cut_off_for_10_seconds_while_services_write(
    fault_stack: FaultStack,
) -> None:
    s = fault_stack
    await s.write_n(4)
    s.proxy.cut()  # every connection to the broker dropped, new ones refused
    try:
        await s.write_for(seconds=10, rate=3)  # the outboxes keep what is written
    finally:
        s.proxy.restore()
    await s.write_n(4)
    result = await s.settled()
    assert result.clean, result
    assert result.accounts == 4 + 4 + sum(s.written.values()) - 8


async def test_broker_restarted_empty_while_services_run(fault_stack: FaultStack) -> None:
    s = fault_stack
    await s.write_n(6)
    await wait_until(lambda: _consumed_all(s), timeout=60, interval=0.1)
    writing = asyncio.create_task(s.write_for(seconds=4, rate=3))
    await asyncio.to_thread(s.broker.restart)  # memory storage: no topics, no offsets
    await writing
    await s.write_n(4)
    result = await s.settled()
    assert result.clean, result
    assert result.accounts == sum(s.written.values())


async def _consumed_all(s: FaultStack) -> bool:
    check = await s.check_once()
    return check.lost == 0 and check.missing == 0


async def test_producer_sigkilled_mid_stream_then_restarted(fault_stack: FaultStack) -> None:
    """identity killed while its relay is sending a burst (and while writes come in)."""
    s = fault_stack
    before = await _applied_by(s, "enrollment")
    await s.write_n(20, kind="identity")

    async def some_sent() -> bool:
        return await _applied_by(s, "enrollment") > before

    await wait_until(some_sent, timeout=60, interval=0.01)
    s.kill("identity")
    writing = asyncio.create_task(s.write_n(6))  # retried until identity is back
    await s.start("identity")
    await writing
    result = await s.settled()
    assert result.clean, result
    assert result.accounts == sum(s.written.values())


async def test_consumer_sigkilled_mid_batch_then_restarted(fault_stack: FaultStack) -> None:
    """enrollment killed while it applies a backlog of identity's events."""
    s = fault_stack
    s.kill("enrollment")
    await s.write_n(40, kind="identity")  # a backlog while it is down
    before = await _applied_by(s, "enrollment")
    await s.start("enrollment")

    async def partway() -> bool:
        return await _applied_by(s, "enrollment") > before

    await wait_until(partway, timeout=60, interval=0.005)
    s.kill("enrollment")  # in the middle of the backlog
    applied_in_first_life = await _applied_by(s, "enrollment") - before
    await s.start("enrollment")
    await s.write_n(4)
    result = await s.settled()
    assert result.clean, result
    assert applied_in_first_life >= 1
    assert result.accounts == sum(s.written.values())


async def test_postgresql_connections_killed_mid_transaction(fault_stack: FaultStack) -> None:
    """Every backend of both services killed every 1.5 s for 8 s: routes, relays and
    consumers lose their connections mid-transaction (both relays died of it before)."""
    s = fault_stack
    admin = await asyncpg.connect(s.servers.pg_dsn("postgres"))
    try:
        killed = 0
        writing = asyncio.create_task(s.write_for(seconds=8, rate=4))
        until = asyncio.get_running_loop().time() + 8
        while not writing.done() and asyncio.get_running_loop().time() < until:
            # every backend of both services: routes, relays, consumers, mid-transaction
            killed += int(await admin.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                " FROM pg_stat_activity WHERE datname = ANY($1::text[])",
                [dsn.rsplit("/", 1)[1] for dsn in s.dsn.values()]))
            await asyncio.wait([writing], timeout=1.5)  # one round of kills a 1.5 s
        await writing
    finally:
        await admin.close()
    await s.write_n(4)
    result = await s.settled()
    assert killed > 0
    assert result.clean, result
    assert result.accounts == sum(s.written.values())
