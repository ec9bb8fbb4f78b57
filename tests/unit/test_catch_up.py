"""The end-of-partition catch-up every agent runs (streams/guarantee.py, issue 16): the stall
detection, the tail reads counted apart from the holes, a failure that crashes the worker, and
the command agents' side (`OneAtATime`): a tail judged one command at a time with its offsets
saved in the agent's table, never judged twice, and never at the same time as the loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from faust import streams as faust_streams
from faust.types import TP

from services import metrics
from streams import guarantee as guarantee_module
from streams.guarantee import OneAtATime, Stalls, applied_key
from tests.support.guarantee import FakeGuarantee
from tests.support.stack import run_async

PREFIX = "t-unit-catch-up."
TOPIC = f"{PREFIX}lists.commands"


def counted(metric: Any) -> float:
    return float(metric.labels(topic="lists.commands")._value.get())


def test_a_partition_is_still_when_two_checks_see_the_same_next_offset() -> None:
    s = Stalls()
    tp = ("t", 1)
    assert not s.still(tp, None) and not s.still(tp, None)  # not started here: never
    assert not s.still(tp, 7)  # first sight: faust may still be delivering
    assert s.still(tp, 7)
    assert not s.still(tp, 9)  # moved
    assert s.still(tp, 9)
    s.reset()
    assert not s.still(tp, 9)  # after a rebalance: first sight again


def test_a_revocation_makes_every_partition_first_seen_again() -> None:
    g = FakeGuarantee({TOPIC}, {TP(TOPIC, 0)}, end=5)
    g.ledger.start((TOPIC, 0), 3)
    applied: list[list[int]] = []

    async def apply(records: list[Any]) -> None:
        applied.append([r.offset for r in records])

    async def go() -> None:
        lock = asyncio.Lock()
        await g.catch_up(g.topics, lock, apply, 100)
        for receiver in g.app.on_partitions_revoked.receivers:
            await receiver(None, signal=None)
        g.ledger.start((TOPIC, 0), 3)  # assigned back, from the saved offsets
        await g.catch_up(g.topics, lock, apply, 100)
        assert applied == []
        await g.catch_up(g.topics, lock, apply, 100)

    run_async(go())
    assert applied == [[3, 4]]


def test_a_tail_read_is_counted_as_a_tail_read_and_a_hole_as_a_hole() -> None:
    g = FakeGuarantee({TOPIC}, {TP(TOPIC, 0)}, end=5, prefix=PREFIX)
    g.ledger.start((TOPIC, 0), 3)
    tails, holes = counted(metrics.AGENT_TAIL_READS), counted(metrics.AGENT_HOLES)

    async def apply(records: list[Any]) -> None:
        pass

    async def go() -> None:
        lock = asyncio.Lock()
        await g.catch_up(g.topics, lock, apply, 100)
        await g.catch_up(g.topics, lock, apply, 100)

    run_async(go())
    assert g.reads == [[3, 4]]
    assert counted(metrics.AGENT_TAIL_READS) == tails + 2
    assert counted(metrics.AGENT_HOLES) == holes
    run_async(g.read(TOPIC, 0, [7]))
    assert counted(metrics.AGENT_TAIL_READS) == tails + 2
    assert counted(metrics.AGENT_HOLES) == holes + 1


def test_kafka_out_of_reach_skips_the_check_and_the_next_one_catches_up() -> None:
    """A broker outage longer than READ_TIMEOUT_S: the check gives up on the partition without
    crashing the worker (faust itself waits for the broker), and once Kafka answers again the
    tail is read and applied."""
    g = FakeGuarantee({TOPIC}, {TP(TOPIC, 0)}, end=5)
    g.ledger.start((TOPIC, 0), 3)
    g.fail = RuntimeError("could not read 2 offsets")
    applied: list[list[int]] = []

    async def apply(records: list[Any]) -> None:
        applied.append([r.offset for r in records])

    async def go() -> None:
        lock = asyncio.Lock()
        await g.catch_up(g.topics, lock, apply, 100)
        await g.catch_up(g.topics, lock, apply, 100)  # still: the read fails
        assert not lock.locked()
        assert g.ledger.next((TOPIC, 0)) == 3  # nothing counts as applied
        g.fail = None
        await g.catch_up(g.topics, lock, apply, 100)  # first sight again
        assert applied == []
        await g.catch_up(g.topics, lock, apply, 100)

    run_async(go())
    assert g.crashed == []
    assert applied == [[3, 4]]


def test_an_end_offset_kafka_does_not_give_skips_the_check() -> None:
    g = FakeGuarantee({TOPIC}, {TP(TOPIC, 0)}, end=5)
    g.ledger.start((TOPIC, 0), 3)
    g.end_fails = TimeoutError()

    async def apply(records: list[Any]) -> None:
        raise AssertionError("nothing to apply")

    async def go() -> None:
        lock = asyncio.Lock()
        for _ in range(3):
            await g.catch_up(g.topics, lock, apply, 100)

    run_async(go())
    assert g.crashed == [] and g.reads == []


def test_a_failure_while_applying_the_tail_crashes_the_worker() -> None:
    g = FakeGuarantee({TOPIC}, {TP(TOPIC, 0)}, end=5)
    g.ledger.start((TOPIC, 0), 3)

    async def apply(records: list[Any]) -> None:
        raise RuntimeError("the table refused the write")

    async def go() -> None:
        lock = asyncio.Lock()
        await g.catch_up(g.topics, lock, apply, 100)
        with pytest.raises(RuntimeError, match="refused"):
            await g.catch_up(g.topics, lock, apply, 100)
        assert not lock.locked()

    run_async(go())
    assert [str(e) for e in g.crashed] == ["the table refused the write"]
    assert g.ledger.next((TOPIC, 0)) == 3  # nothing counts as applied


def test_a_delivered_batch_waits_for_kafka_to_say_where_a_partition_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing saved, nothing committed, Kafka down: the batch asks again until it answers
    (nothing applied yet), instead of crashing the worker on the first timeout."""
    monkeypatch.setattr(guarantee_module, "START_RETRY_S", 0.0)
    g = FakeGuarantee({TOPIC}, {TP(TOPIC, 0)}, end=5)
    g.earliest_fails = 3
    plan = run_async(g.plan(g.ledger.batch(), TOPIC, 0, [0, 1]))
    assert plan.apply == [0, 1] and g.earliest_fails == 0
    assert g.ledger.next((TOPIC, 0)) == 0


def test_a_catch_up_start_asks_kafka_once_and_skips_when_it_does_not_answer() -> None:
    g = FakeGuarantee({TOPIC}, {TP(TOPIC, 0)}, end=5)
    g.earliest_fails = 1

    async def apply(records: list[Any]) -> None:
        raise AssertionError("nothing to apply")

    run_async(g.catch_up(g.topics, asyncio.Lock(), apply, 100))
    assert not g.ledger.knows((TOPIC, 0)) and g.crashed == [] and g.earliest_fails == 0


def test_a_catch_up_start_that_a_rebalance_overtook_is_dropped() -> None:
    """The partition may be another worker's once Kafka answers: its ledger is not started
    (a stale start would make a later assignment skip its saved offsets)."""
    g = FakeGuarantee({TOPIC}, {TP(TOPIC, 0)}, end=5)

    async def rebalance() -> None:
        for receiver in g.app.on_partitions_revoked.receivers:
            await receiver(None, signal=None)

    g.while_asked = rebalance

    async def apply(records: list[Any]) -> None:
        raise AssertionError("nothing to apply")

    run_async(g.catch_up(g.topics, asyncio.Lock(), apply, 100))
    assert not g.ledger.knows((TOPIC, 0))


# ---- the command agents -------------------------------------------------------------------


def delivered(offset: int, partition: int = 2) -> SimpleNamespace:
    return SimpleNamespace(
        key=b"k",
        value=b"v%d" % offset,
        message=SimpleNamespace(topic=TOPIC, partition=partition, offset=offset),
    )


class _Stream:
    """faust's stream as the loop reads it (`events()`); it sets no current event here."""

    def __init__(self, events: list[Any]) -> None:
        self._events = events

    async def events(self) -> AsyncIterator[Any]:
        for e in self._events:
            yield e


def commands(end: int, start: int = 4) -> SimpleNamespace:
    g = FakeGuarantee({TOPIC}, {TP(TOPIC, 2)}, end=end)
    g.ledger.start((TOPIC, 2), start)
    state: dict[str, Any] = {}
    judged: list[tuple[int, int | None]] = []  # offset, partition of faust's current event

    async def judge(event: Any) -> None:
        current = faust_streams.current_event()
        judged.append((event.message.offset, current.message.partition if current else None))

    return SimpleNamespace(
        guarantee=g, state=state, judged=judged, agent=OneAtATime(g, state, judge), judge=judge
    )


def test_a_command_agent_judges_its_tail_and_saves_the_offsets_in_its_table() -> None:
    c = commands(end=7)
    run_async(c.agent.catch_up())
    assert c.judged == []
    run_async(c.agent.catch_up())
    # Each in log order, with the read record as faust's current event: the table's writes
    # take their changelog partition from it.
    assert c.judged == [(4, 2), (5, 2), (6, 2)]
    assert json.loads(c.state[applied_key(2)]) == {TOPIC: 7}
    assert c.guarantee.ledger.next((TOPIC, 2)) == 7
    assert faust_streams.current_event() is None  # only while judging
    # faust delivers them after all: redeliveries, not judged again.
    run_async(_drain(c.agent.loop(_Stream([delivered(5), delivered(6), delivered(7)]))))
    assert c.judged[3:] == [(7, None)]
    assert json.loads(c.state[applied_key(2)]) == {TOPIC: 8}


def test_a_partition_faust_delivered_nothing_of_is_started_and_caught_up() -> None:
    """Nothing saved, nothing committed: started at its earliest offset, as a first delivery
    would start it, then read at the next check."""
    c = commands(end=2)
    c.guarantee.ledger.forget_all()
    run_async(c.agent.catch_up())
    assert c.guarantee.ledger.next((TOPIC, 2)) == 0 and c.judged == []
    run_async(c.agent.catch_up())
    assert [o for o, _ in c.judged] == [0, 1]
    assert json.loads(c.state[applied_key(2)]) == {TOPIC: 2}


def test_a_command_catch_up_is_at_most_a_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.guarantee.COMMANDS_PER_CATCH_UP", 2)
    c = commands(end=9)
    run_async(c.agent.catch_up())
    run_async(c.agent.catch_up())
    assert [o for o, _ in c.judged] == [4, 5]
    run_async(c.agent.catch_up())  # moved since: first sight of 6
    run_async(c.agent.catch_up())
    assert [o for o, _ in c.judged] == [4, 5, 6, 7]


def test_the_catch_up_waits_for_the_command_the_loop_is_judging() -> None:
    """The loop judges offset 4 while the catch-up sees the partition stood still at 4: the
    catch-up waits for the loop's lock, then finds the partition moved and reads nothing."""
    c = commands(end=5)
    release = asyncio.Event()
    judging = asyncio.Event()

    async def slow_judge(event: Any) -> None:
        judging.set()
        await release.wait()
        await c.judge(event)

    c.agent.judge = slow_judge

    async def go() -> None:
        await c.agent.catch_up()  # first sight of 4
        loop = asyncio.create_task(_drain(c.agent.loop(_Stream([delivered(4)]))))
        await judging.wait()
        catching = asyncio.create_task(c.agent.catch_up())
        await asyncio.sleep(0.05)
        assert not catching.done() and c.guarantee.reads == []  # waiting for the lock
        release.set()
        await asyncio.gather(loop, catching)

    run_async(go())
    assert [o for o, _ in c.judged] == [4]  # by the loop only
    assert c.guarantee.reads == []


def test_the_loop_reads_a_hole_and_judges_it_in_its_place() -> None:
    c = commands(end=9)
    run_async(_drain(c.agent.loop(_Stream([delivered(6)]))))
    assert [o for o, _ in c.judged] == [4, 5, 6]
    assert c.guarantee.reads == [[4, 5]]
    assert json.loads(c.state[applied_key(2)]) == {TOPIC: 7}


async def _drain(it: AsyncIterator[None]) -> None:
    async for _ in it:
        pass
