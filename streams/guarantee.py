"""An agent's applied offsets, wired to faust: where each partition starts, what is committed,
and the messages faust skipped, read straight from their partition (the rule: streams/ledger.py).

Each agent keeps its saved offsets in one of its own changelog-backed tables, under a key per
partition (`applied-p<n>`: JSON `{topic: next offset}`), written after the effects of the
events before them; a worker that takes a partition over starts there.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka.structs import TopicPartition as KafkaTP  # type: ignore[import-untyped]
from faust.types import TP

from services import metrics
from streams import faust_fixes
from streams.ledger import Batch, Ledger, Plan

# How long reading the messages faust skipped may take before the worker gives up (and crashes,
# to start again from the saved offsets).
READ_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Record:
    """A message read straight from its partition, shaped like what faust delivers (the agent
    reads `key`, `value` and `message.topic/partition/offset`)."""

    key: bytes | None
    value: bytes
    topic: str
    partition: int
    offset: int

    @property
    def message(self) -> Record:
        return self


log = logging.getLogger(__name__)


def applied_key(partition: int) -> str:
    return f"applied-p{partition}"


class Guarantee:
    """One agent's ledger over its input topics; `saved(partition)` reads what its table holds
    under `applied_key(partition)`."""

    def __init__(
        self,
        app: Any,
        topics: set[str],
        saved: Callable[[int], bytes | str | None],
        bootstrap: str,
        gapped_topics: frozenset[str] = frozenset(),
        prefix: str = "",
    ) -> None:
        self.app = app
        self._bootstrap = bootstrap
        self._consumer: Any = None
        self.ledger = Ledger(gapped_topics=gapped_topics)
        self._saved = saved
        self._prefix = prefix
        faust_fixes.commit_from(self.ledger.committable, topics)
        # faust revokes every partition at a rebalance (eager protocol) after waiting for the
        # events in flight: each partition starts again from its table.
        app.on_partitions_revoked.connect(self._forget)

    async def _forget(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.ledger.forget_all()

    def saved(self, partition: int) -> dict[str, int]:
        raw = self._saved(partition)
        return {str(k): int(v) for k, v in json.loads(raw).items()} if raw else {}

    async def plan(self, batch: Batch, topic: str, partition: int, offsets: list[int]) -> Plan:
        """What to apply of one partition's delivered offsets (see `Batch.plan`)."""
        tp = (topic, partition)
        if not self.ledger.knows(tp):
            await self._start(tp)
        plan = batch.plan(tp, offsets)
        if plan.seen:
            self._redelivered(topic).inc(len(plan.seen))
        return plan

    async def read(self, topic: str, partition: int, offsets: list[int]) -> dict[int, Record]:
        """The messages at these offsets, read straight from the partition: the ones faust
        skipped. Fails (and so crashes the worker, which starts again from the saved offsets)
        if they cannot all be read within READ_TIMEOUT_S."""
        self._holes(topic).inc(len(offsets))
        log.warning(
            "%d offsets of %s[%d] were not delivered (%d-%d); reading them directly",
            len(offsets),
            topic,
            partition,
            offsets[0],
            offsets[-1],
        )
        reader = await self._reader()
        ktp = KafkaTP(topic, partition)
        reader.assign([ktp])
        reader.seek(ktp, offsets[0])
        want, last = set(offsets), offsets[-1]
        got: dict[int, Record] = {}
        deadline = time.monotonic() + READ_TIMEOUT_S
        while want - got.keys():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"could not read {len(want - got.keys())} offsets of {topic}[{partition}] "
                    f"from {min(want - got.keys())}"
                )
            batch = await reader.getmany(ktp, timeout_ms=500)
            for r in batch.get(ktp, []):
                if r.offset in want:
                    got[r.offset] = Record(r.key, r.value, topic, partition, r.offset)
                if r.offset >= last:
                    break
        return got

    async def _reader(self) -> Any:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap.split(","),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def _start(self, tp: tuple[str, int]) -> None:
        """Where the table says the state stands; with nothing saved (a state written before
        the ledger existed, or none), the offset faust sought to: the committed one; with
        nothing committed either, the partition's earliest offset (the group's
        consumer_auto_offset_reset), asked of Kafka.

        Not the first offset delivered: faust seeks a partition it keeps across a rebalance
        only to a committed offset, so one with none keeps the fetch position it had. Messages
        fetched before the rebalance and dropped with the streams' buffers (flow control
        cleared at the revocation) were then never delivered again, and starting at the first
        delivered one passed them for good: a member's scans lost, the rebalance-guarantee
        test's intermittent failure (two workers, fresh topics; either store)."""
        topic, partition = tp
        saved = self.saved(partition).get(topic)
        if saved is not None:
            self.ledger.start(tp, saved)
            return
        consumer: Any = self.app.consumer  # faust keeps the committed offsets it sought to here
        committed = consumer._committed_offset.get(TP(topic, partition))
        if committed is not None:
            self.ledger.start(tp, int(committed))
            return
        self.ledger.start(tp, await self._earliest(topic, partition))

    async def end_offset(self, topic: str, partition: int) -> int:
        """The offset the partition's next message will get."""
        reader = await self._reader()
        ktp = KafkaTP(topic, partition)
        offsets = await asyncio.wait_for(reader.end_offsets([ktp]), READ_TIMEOUT_S)
        return int(offsets[ktp])

    async def _earliest(self, topic: str, partition: int) -> int:
        """The partition's first offset still in the log."""
        reader = await self._reader()
        ktp = KafkaTP(topic, partition)
        offsets = await asyncio.wait_for(reader.beginning_offsets([ktp]), READ_TIMEOUT_S)
        return int(offsets[ktp])

    def to_save(self, batch: Batch) -> dict[int, bytes]:
        """The saved offsets this batch moves: partition -> the value of `applied_key`."""
        by_partition: dict[int, dict[str, int]] = {}
        for (topic, partition), offset in batch.advanced().items():
            by_partition.setdefault(partition, {})[topic] = offset
        return {
            p: json.dumps({**self.saved(p), **offsets}, sort_keys=True).encode()
            for p, offsets in by_partition.items()
        }

    @functools.cache  # noqa: B019 - one label child per topic, for the process's life
    def _redelivered(self, topic: str) -> Any:
        return metrics.AGENT_REDELIVERED.labels(topic=topic.removeprefix(self._prefix))

    @functools.cache  # noqa: B019
    def _holes(self, topic: str) -> Any:
        return metrics.AGENT_HOLES.labels(topic=topic.removeprefix(self._prefix))


async def one_at_a_time(
    guarantee: Guarantee,
    state: MutableMapping[str, Any],
    stream: Any,
    judge: Callable[[Any], Awaitable[None]],
) -> AsyncIterator[None]:
    """A command agent's loop (the lists, the activities): one command at a time, in log order;
    the ledger decides what is committed (a command faust skipped around a rebalance is read
    directly, never passed; streams/ledger.py). `judge` hands every record it makes to faust's
    producer before the offset counts as applied, and faust flushes the producer before it
    commits; the saved offsets go into the agent's own table (`state`) after the records."""
    async for event in stream.events():
        m = event.message
        batch = guarantee.ledger.batch()
        plan = await guarantee.plan(batch, m.topic, m.partition, [m.offset])
        if plan.apply:
            read = await guarantee.read(m.topic, m.partition, plan.missing) if plan.missing else {}
            for offset in plan.apply:
                await judge(read.get(offset, event))
            for p, value in guarantee.to_save(batch).items():
                state[applied_key(p)] = value.decode()
            batch.settle()
        yield None
