"""An agent's applied offsets, wired to faust: where each partition starts, what is committed,
and the messages faust skipped, read straight from their partition (the rule: streams/ledger.py);
the end-of-partition catch-up every agent runs (`Guarantee.catch_up`); the command agents' loop
(`OneAtATime`).

Each agent keeps its saved offsets in one of its own changelog-backed tables, under a key per
partition (`applied-p<n>`: JSON `{topic: next offset}`), written after the effects of the
events before them; a worker that takes a partition over starts there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka.structs import TopicPartition as KafkaTP  # type: ignore[import-untyped]
from faust import streams as faust_streams
from faust.types import TP

from services import metrics
from streams import faust_fixes
from streams.ledger import Batch, Ledger, Plan, TopicPartition

# How long reading the messages faust skipped may take before the worker gives up (and crashes,
# to start again from the saved offsets).
READ_TIMEOUT_S = 30.0
# How often every agent looks for a partition's tail that faust does not deliver (`catch_up`).
CATCH_UP_S = 10.0
# The most commands a command agent's catch-up judges in one step (the session agent takes a
# batch, SESSION_BATCH_SIZE): the agent's own loop waits meanwhile, so a partition starved
# behind a backlog catches up in steps.
COMMANDS_PER_CATCH_UP = 100
# How long a delivered batch waits before asking Kafka again where a partition starts.
START_RETRY_S = 1.0


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
T = TypeVar("T")


def applied_key(partition: int) -> str:
    return f"applied-p{partition}"


@dataclass
class Stalls:
    """Which partitions' ledgers stood still between two checks (pure): faust delivering a
    partition moves its ledger, so one that did not move while Kafka holds messages after it
    is one whose tail faust is not delivering."""

    _at: dict[TopicPartition, int] = field(default_factory=dict)

    def still(self, tp: TopicPartition, nxt: int | None) -> bool:
        """Records `nxt` for `tp`; True if the previous check saw the same. None (a partition
        not started here yet: its first delivery starts it) is never still and not recorded."""
        if nxt is None:
            return False
        before = self._at.get(tp)
        self._at[tp] = nxt
        return before == nxt

    def forget(self, tp: TopicPartition) -> None:
        self._at.pop(tp, None)

    def reset(self) -> None:
        """After a rebalance every partition is first seen again: faust may still be about to
        deliver what its new assignment holds."""
        self._at.clear()


class DropOnce:
    """FAULT INJECTION for tests and drills (SESSION_FAULT_SKIP, COMMAND_FAULT_SKIP): drop the
    first delivery of given messages (`topic:partition|*:offset,...`, topic without the
    prefix), as faust's streams drop a message fetched before a rebalance."""

    def __init__(self, spec: str, prefix: str) -> None:
        self.prefix = prefix
        self.pending: set[tuple[str, str, int]] = set()
        for item in filter(None, spec.split(",")):
            topic, partition, offset = item.rsplit(":", 2)
            self.pending.add((topic, partition, int(offset)))

    def skip(self, topic: str, partition: int, offset: int) -> bool:
        if not self.pending:
            return False
        name = topic.removeprefix(self.prefix)
        for key in ((name, str(partition), offset), (name, "*", offset)):
            if key in self.pending:
                self.pending.discard(key)
                log.warning("fault injection: dropped %s[%d]@%d once", topic, partition, offset)
                return True
        return False


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
        self.topics = frozenset(topics)
        self._bootstrap = bootstrap
        self._consumer: Any = None
        self.ledger = Ledger(gapped_topics=gapped_topics)
        self._saved = saved
        self._prefix = prefix
        self._stalls = Stalls()
        # Moves at every revocation: a catch-up step that waited on Kafka across a rebalance
        # must not start or apply a partition it may no longer own.
        self._generation = 0
        faust_fixes.commit_from(self.ledger.committable, topics)
        # faust revokes every partition at a rebalance (eager protocol) after waiting for the
        # events in flight: each partition starts again from its table.
        app.on_partitions_revoked.connect(self._forget)

    async def _forget(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.ledger.forget_all()
        self._stalls.reset()
        self._generation += 1

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
        skipped (a hole: a later message of the partition was delivered). Fails (and so
        crashes the worker, which starts again from the saved offsets) if they cannot all be
        read within READ_TIMEOUT_S."""
        self._holes(topic).inc(len(offsets))
        log.warning(
            "%d offsets of %s[%d] were not delivered (%d-%d); reading them directly",
            len(offsets),
            topic,
            partition,
            offsets[0],
            offsets[-1],
        )
        return await self._fetch(topic, partition, offsets)

    async def read_tail(self, topic: str, partition: int, offsets: list[int]) -> dict[int, Record]:
        """As `read`, for the end of a partition that faust did not deliver within a catch-up
        interval (`catch_up`): counted apart from the holes, since under a backlog or after a
        takeover a tail read is the catch-up doing its job, not faust losing a delivery."""
        self._tail_reads(topic).inc(len(offsets))
        log.warning(
            "%d offsets at the end of %s[%d] were not delivered within %.0f s (%d-%d); "
            "reading them directly",
            len(offsets),
            topic,
            partition,
            CATCH_UP_S,
            offsets[0],
            offsets[-1],
        )
        return await self._fetch(topic, partition, offsets)

    async def _fetch(self, topic: str, partition: int, offsets: list[int]) -> dict[int, Record]:
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

    async def catch_up(
        self,
        topics: Collection[str],
        lock: asyncio.Lock,
        apply: Callable[[list[Record]], Awaitable[None]],
        most: int,
    ) -> None:
        """Applies the messages at the end of a partition that faust does not deliver; each
        agent calls it every CATCH_UP_S from a timer, with the lock its own loop holds while
        it applies (the direct reader, the ledger and the agent's state are shared).

        The ledger finds a message faust skipped when a later one of the same partition
        arrives (a hole) and reads it directly; at the end of a partition nothing later
        arrives. After a worker took partitions over (a SIGKILLed owner), faust delivered the
        first message of a partition and never the seven after it (streams/faust_fixes.py: its
        streams resume before its seek; the rebalance-guarantee test, once in about ten runs):
        those scans waited for the member's next scan in that partition, and a command (a
        member's sign-up the API acknowledged) for the next command on its partition. So an
        owned partition of `topics` whose ledger did not move since the previous check while
        Kafka holds messages after it has them read directly (at most `most` of them) and
        handed to `apply`, which applies them as the agent's loop would and saves the offsets.
        A partition faust delivered nothing of yet is started first, as its first delivery
        would start it (saved, committed, else earliest offset).

        Kafka out of reach (its end offsets, the read) skips the partition until the next
        check: nothing was applied, and faust itself waits for the broker, so a worker rides
        out an outage longer than READ_TIMEOUT_S instead of crashing on its own timer. A
        failure while applying crashes the worker: the next owner starts again from the saved
        offsets."""
        app = self.app
        if app.should_stop or app.rebalancing or not app.flow_control.is_active():
            self._stalls.reset()
            return
        for tp in sorted(app.assignor.assigned_actives()):
            if not isinstance(tp, TP) or tp.topic not in topics:
                continue
            key = (tp.topic, tp.partition)
            generation = self._generation
            if not self.ledger.knows(key):
                # Nothing of it delivered since it was assigned: started where its first
                # delivery would start it, so a tail faust never delivers any of is found.
                async with lock:
                    if app.rebalancing:
                        continue
                    if not self.ledger.knows(key) and not await self._unreachable(
                        key, self._started(key)
                    ):
                        continue
            nxt = self.ledger.next(key)
            if not self._stalls.still(key, nxt):
                continue  # moved since the last check, or first seen
            # Under the agent's lock: its loop may be applying this very partition.
            async with lock:
                if nxt is None or app.rebalancing or self.ledger.next(key) != nxt:
                    continue  # the partition moved meanwhile, or faust delivered after all
                end = await self._unreachable(key, self.end_offset(tp.topic, tp.partition))
                if end is None or end <= nxt:
                    continue
                last = min(end, nxt + most)
                records = await self._unreachable(
                    key, self.read_tail(tp.topic, tp.partition, list(range(nxt, last)))
                )
                if records is None or self._generation != generation:
                    continue
                try:
                    await apply([records[o] for o in sorted(records)])
                except Exception as exc:
                    log.exception("catch-up of %s[%d] failed; stopping the worker", *key)
                    await app.crash(exc)
                    raise

    async def _started(self, key: TopicPartition) -> bool:
        """Started as a first delivery would start it, asking Kafka once; not if a rebalance
        came while Kafka answered (the partition may be another worker's now)."""
        generation = self._generation
        offset = await self._start_offset(key, patient=False)
        if self._generation != generation:
            return False
        self.ledger.start(key, offset)
        return True

    async def _unreachable(self, key: TopicPartition, step: Awaitable[T]) -> T | None:
        """`step`'s answer from Kafka, or None (logged) when Kafka did not give it: the
        partition is looked at afresh at the next check."""
        try:
            return await step
        except Exception as exc:
            self._stalls.forget(key)
            log.warning(
                "catch-up of %s[%d] skipped until the next check: Kafka did not answer (%s)",
                *key,
                exc,
            )
            return None

    async def _reader(self) -> Any:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap.split(","),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()  # a consumer that could not reach Kafka holds sockets
                raise
            self._consumer = consumer
        return self._consumer

    async def _start(self, tp: tuple[str, int]) -> None:
        """Starts the partition's ledger where `_start_offset` says, for a delivered batch: its
        first offset is asked of Kafka until it answers (nothing of the batch is applied yet,
        and faust's own consumer waits for the broker as well), so an outage does not crash
        the worker."""
        self.ledger.start(tp, await self._start_offset(tp, patient=True))

    async def _start_offset(self, tp: tuple[str, int], patient: bool) -> int:
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
            return saved
        consumer: Any = self.app.consumer  # faust keeps the committed offsets it sought to here
        committed = consumer._committed_offset.get(TP(topic, partition))
        if committed is not None:
            return int(committed)
        while True:
            try:
                return await self._earliest(topic, partition)
            except Exception as exc:
                if not patient or self.app.should_stop:
                    raise
                log.warning(
                    "the first offset of %s[%d] is not known: Kafka did not answer (%s); "
                    "asking again",
                    topic,
                    partition,
                    exc,
                )
                await asyncio.sleep(START_RETRY_S)

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

    @functools.cache  # noqa: B019
    def _tail_reads(self, topic: str) -> Any:
        return metrics.AGENT_TAIL_READS.labels(topic=topic.removeprefix(self._prefix))


@contextlib.contextmanager
def as_current(event: Any) -> Iterator[None]:
    """faust's tables take the changelog partition of a write from the event being processed
    (`faust.streams.current_event()`, a context variable its streams set in the agent's task;
    `Collection.partition_for_key`). A record the catch-up read in a timer was delivered by no
    stream, so it is made the current event while it is judged: the writes land in its
    partition, where the partition's next owner recovers them."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


class OneAtATime:
    """A command agent's loop (the lists, the activities): one command at a time, in log order;
    the ledger decides what is committed (a command faust skipped around a rebalance is read
    directly, never passed; streams/ledger.py), and the catch-up (`Guarantee.catch_up`) judges
    a partition's tail faust does not deliver. `judge` hands every record it makes to faust's
    producer before the offset counts as applied, and faust flushes the producer before it
    commits; the saved offsets go into the agent's own table (`state`) after the records.

    The loop and the catch-up judge under one lock: both read the ledger and the state and
    write the table, and a command judged by both would be judged against a stale state."""

    def __init__(
        self,
        guarantee: Guarantee,
        state: MutableMapping[str, Any],
        judge: Callable[[Any], Awaitable[None]],
        faults: DropOnce | None = None,
    ) -> None:
        self.guarantee = guarantee
        self.state = state
        self.judge = judge
        self.faults = faults or DropOnce("", "")
        self.lock = asyncio.Lock()

    async def loop(self, stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            m = event.message
            if not self.faults.skip(m.topic, m.partition, m.offset):
                async with self.lock:
                    await self._judge_run(m.topic, m.partition, [event])
            yield None

    async def catch_up(self) -> None:
        """Called every CATCH_UP_S by the agent's timer."""
        await self.guarantee.catch_up(
            self.guarantee.topics, self.lock, self._judge_tail, COMMANDS_PER_CATCH_UP
        )

    async def _judge_tail(self, records: list[Record]) -> None:
        if records:
            first = records[0]
            with as_current(first):
                await self._judge_run(first.topic, first.partition, records)

    async def _judge_run(self, topic: str, partition: int, events: list[Any]) -> None:
        """Plans, judges in log order and saves one partition's run of offsets."""
        batch = self.guarantee.ledger.batch()
        by_offset = {e.message.offset: e for e in events}
        plan = await self.guarantee.plan(batch, topic, partition, list(by_offset))
        if not plan.apply:
            return
        if plan.missing:
            by_offset.update(await self.guarantee.read(topic, partition, plan.missing))
        for offset in plan.apply:
            await self.judge(by_offset[offset])
        for p, value in self.guarantee.to_save(batch).items():
            self.state[applied_key(p)] = value.decode()
        batch.settle()
