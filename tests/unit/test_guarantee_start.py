"""Where an agent's ledger starts a partition with nothing saved and nothing committed
(streams/guarantee.py): at the partition's earliest offset, not at the first message faust
delivers. A partition kept across a rebalance keeps faust's fetch position when no offset was
committed, so the messages fetched before it and dropped with the streams' buffers are not
delivered again: starting at the first delivered one lost them (issue 16, the
rebalance-guarantee test's intermittent failure)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiokafka.structs import TopicPartition as KafkaTP  # type: ignore[import-untyped]
from faust.types import TP

from streams.guarantee import Guarantee
from tests.support.stack import run_async

TOPIC = "unit-guarantee-start.checkins"


class _Signal:
    def connect(self, fn: Any) -> None:
        pass


class _Reader:
    def __init__(self, earliest: int) -> None:
        self.earliest = earliest
        self.asked: list[Any] = []

    async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
        self.asked.extend(tps)
        return {tp: self.earliest for tp in tps}


def guarantee(saved: bytes | None, committed: dict[TP, int], earliest: int) -> Guarantee:
    app = SimpleNamespace(
        on_partitions_revoked=_Signal(),
        consumer=SimpleNamespace(_committed_offset=committed),
    )
    g = Guarantee(app, {TOPIC}, lambda p: saved, "127.0.0.1:9")
    reader = _Reader(earliest)

    async def _reader() -> _Reader:
        return reader

    g._reader = _reader  # type: ignore[method-assign]
    return g


def test_nothing_saved_or_committed_starts_at_the_earliest_offset_not_the_first_delivered() -> None:
    g = guarantee(None, {}, earliest=0)
    # faust delivers from 16 on: 0-15 were fetched before the rebalance and dropped.
    plan = run_async(g.plan(g.ledger.batch(), TOPIC, 4, [16, 17]))
    assert plan.apply == list(range(18))
    assert plan.missing == list(range(16))  # read straight from the partition, then applied


def test_the_earliest_offset_is_the_log_start_after_retention() -> None:
    g = guarantee(None, {}, earliest=10)
    plan = run_async(g.plan(g.ledger.batch(), TOPIC, 1, [12]))
    assert plan.apply == [10, 11, 12] and plan.missing == [10, 11]


def test_a_saved_or_committed_offset_still_decides_without_asking_kafka() -> None:
    g = guarantee(b'{"%s": 30}' % TOPIC.encode(), {}, earliest=0)
    assert run_async(g.plan(g.ledger.batch(), TOPIC, 0, [31])).apply == [30, 31]
    g = guarantee(None, {TP(TOPIC, 2): 20}, earliest=0)
    assert run_async(g.plan(g.ledger.batch(), TOPIC, 2, [22])).apply == [20, 21, 22]
    reader = run_async(g._reader())
    assert reader.asked == []
    g = guarantee(None, {}, earliest=0)
    run_async(g.plan(g.ledger.batch(), TOPIC, 3, [0]))
    assert run_async(g._reader()).asked == [KafkaTP(TOPIC, 3)]
