"""Turns each member's scans and reviews into sessions and weekly totals (rules: services.sessions).

One agent reads three co-partitioned topics keyed alike: `checkins` and `session-reviews`
(key: member id) and `session-clock` (one tick per partition). A member's state and the
partition's index of members with open sessions are written to changelog partition p, with
partition p of all three topics, so a worker that takes over partition p recovers exactly
that state.

Batches: the agent takes up to SESSION_BATCH_SIZE events (or what came within
SESSION_BATCH_WITHIN_S), applies each partition's events in log order to the parsed states,
then saves each touched state once and publishes only the latest revision of each session and
week. Per scan, the state's JSON and its changelog record were most of the cost (bench/
findings.md); per batch they are paid once per member.

Delivery: faust flushes the producer (changelog and outputs) before committing input offsets,
so a worker killed mid-way re-reads events whose effects may be partly saved. The rules make
that harmless: a re-read event is recognised by its id and the latest records are published
again with the same ids and revisions, which every consumer deduplicates.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from typing import Any

from faust.types import TP

from services import gc_watch, metrics, state_format
from services import partition_index as pindex
from services.events import (
    CheckinScanned,
    ClockTicked,
    Event,
    MemberWeekRecorded,
    SessionRecorded,
    SessionReviewed,
    derived_id,
    parse_event,
    utcnow,
)
from services.sessions import (
    LateScan,
    MemberState,
    SessionRules,
    latest_records,
    on_clock,
    on_review,
    on_scan,
    week_record_key,
)
from services.topics import (
    CHECKINS,
    DEAD_LETTER,
    MEMBER_STATE_TABLE,
    MEMBER_WEEKS,
    PARTITION_INDEX_TABLE,
    SESSION_CLOCK,
    SESSION_REVIEWS,
    SESSIONS,
)
from streams.app import app, raw_topic, settings
from streams.guarantee import CATCH_UP_S, DropOnce, Guarantee, applied_key
from streams.state_store import StateStore

log = logging.getLogger(__name__)

RULES = SessionRules.from_settings(settings)

_CHECKINS = settings.topic(CHECKINS.name)
_REVIEWS = settings.topic(SESSION_REVIEWS.name)
_CLOCK = settings.topic(SESSION_CLOCK.name)
_SESSIONS = settings.topic(SESSIONS.name)
_MEMBER_WEEKS = settings.topic(MEMBER_WEEKS.name)
_DEAD_LETTER = settings.topic(DEAD_LETTER.name)

session_input = raw_topic(CHECKINS, SESSION_REVIEWS, SESSION_CLOCK)


class _Faults(DropOnce):
    """FAULT INJECTION for tests and drills (settings SESSION_FAULT_*): drop the first delivery
    of given messages, as faust's streams drop a message fetched before a rebalance; hold
    batches in flight while a file exists."""

    async def hold(self, n: int) -> None:
        path = settings.session_fault_hold_file
        if not path or not os.path.exists(path):
            return
        log.warning("fault injection: holding a batch of %d events", n)
        deadline = time.monotonic() + settings.session_fault_hold_s
        while os.path.exists(path) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        log.warning("fault injection: batch released")


_faults = _Faults(settings.session_fault_skip, settings.topic_prefix)
clock_topic = raw_topic(SESSION_CLOCK)

# RocksDB's memory per table and partition (STATE_STORE=rocksdb; the memory store ignores them).
# faust's defaults are 3 memtables of 64 MiB and a 2 GiB block cache for *each* partition's
# database: with 6 partitions of 2 tables, gigabytes once a million members' states pass
# through. Memtables of 16 MiB and a 16 MiB block cache per member-state partition bound
# RocksDB at ~300 MB for the worker; a state read that misses the cache costs a read of the
# OS page cache (bench/findings.md, section 6).
_MiB = 1024 * 1024
ROCKSDB_MEMBERS = {
    "write_buffer_size": 16 * _MiB,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 * _MiB,
    "target_file_size_base": 32 * _MiB,
}
ROCKSDB_INDEX = {
    "write_buffer_size": 4 * _MiB,
    "max_write_buffer_number": 2,
    "block_cache_size": 4 * _MiB,
    "target_file_size_base": 8 * _MiB,
}

# Keyed by member id (bytes); the value is MemberState as JSON bytes, stored raw. (v2: the
# first version kept JSON text inside a JSON string; a new name, so no worker reads both.)
member_state = app.Table(
    MEMBER_STATE_TABLE,
    default=None,
    key_type=bytes,
    value_type=bytes,
    partitions=CHECKINS.partitions,
    options=ROCKSDB_MEMBERS,
)
# The partition's clock and its members with an open session, each with its deadline (layout:
# services/partition_index.py; `p<n>` and, from format 4, `o<n>:<member>`), and the ledger's
# `applied-p<n>`. The clock ticks only these members, so a tick costs the open sessions.
partition_index = app.Table(
    PARTITION_INDEX_TABLE,
    default=None,
    key_type=bytes,
    value_type=bytes,
    partitions=CHECKINS.partitions,
    options=ROCKSDB_INDEX,
)

for _table in (member_state, partition_index):
    # faust's Table takes no serializer arguments (it derives "json" from the types); set
    # before the changelog topic is first made, which copies them.
    _table.key_serializer = _table.value_serializer = "raw"  # type: ignore[attr-defined]

# Both tables read and written by partition (STATE_STORE: memory or rocksdb; streams/state_store.py).
MEMBERS = StateStore(member_state)
INDEX = StateStore(partition_index)

# What this worker has applied of each input partition, saved in the partition index table: the
# only source of the offsets it commits (streams/ledger.py). The clock topic is compacted: its
# offsets may jump.
GUARANTEE = Guarantee(
    app,
    {_CHECKINS, _REVIEWS, _CLOCK},
    lambda p: INDEX.get(p, applied_key(p).encode()),
    settings.kafka_bootstrap,
    gapped_topics=frozenset({_CLOCK}),
    prefix=settings.topic_prefix,
)


class Outbox:
    """Everything one batch writes (changelog records and output records), sent straight to
    faust's producer; `delivered` waits until Kafka acknowledged every one of them, so the
    batch's input events are acknowledged, hence committed, only after their effects are in
    Kafka. (Through faust's Topic.send and table item assignment the same records cost about
    twice as much: a FutureMessage, sensors and a 100-message send buffer per record.)"""

    def __init__(self) -> None:
        self._acks: list[Awaitable[Any]] = []
        # Table writes, applied to the local store once Kafka acknowledged them (state_store).
        self._writes: list[tuple[StateStore, int, bytes, bytes | None]] = []
        self._logged: list[tuple[StateStore, Awaitable[Any]]] = []
        self.sessions = 0
        self.weeks = 0

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None,
        headers: dict[str, bytes] | None = None,
    ) -> None:
        self._acks.append(await app.producer.send(topic, key, value, partition, None, headers))

    async def put(self, store: StateStore, partition: int, key: bytes, value: bytes | None) -> None:
        """`table[key] = value` (None: delete), with the changelog partition named: faust would
        take it from the event being processed, but a batch holds events of several
        partitions, and the state must land in changelog partition p, where the owner of
        partition p recovers it. The local store follows in `delivered`."""
        topic = store.table.changelog_topic.get_topic_name()
        ack = await app.producer.send(topic, key, value, partition, None, None)
        self._acks.append(ack)
        self._logged.append((store, ack))
        self._writes.append((store, partition, key, value))

    async def publish(self, records: list[Event]) -> None:
        for e in records:
            if isinstance(e, SessionRecorded):
                await self.send(_SESSIONS, e.session_id.encode(), e.to_bytes(), None)
                self.sessions += 1
            elif isinstance(e, MemberWeekRecorded):
                key = week_record_key(e).encode()
                await self.send(_MEMBER_WEEKS, key, e.to_bytes(), None)
                self.weeks += 1

    async def delivered(self) -> None:
        await asyncio.gather(*self._acks)
        for store, partition, key, value in self._writes:
            store.put(partition, key, value)
        written: dict[tuple[StateStore, str, int], list[int]] = {}
        for store, ack in self._logged:
            meta = ack.result()  # type: ignore[attr-defined]
            written.setdefault((store, meta.topic, meta.partition), []).append(meta.offset)
        for (store, topic, partition), offsets in written.items():
            store.persisted(topic, partition, offsets)
        metrics.AGENT_SESSIONS.inc(self.sessions)
        metrics.AGENT_WEEKS.inc(self.weeks)


def _expected(topic: str) -> type[Event]:
    if topic == _REVIEWS:
        return SessionReviewed
    if topic == _CLOCK:
        return ClockTicked
    return CheckinScanned


# The partition's index, parsed, beside the table (as for member states below): it is read on
# every batch and holds every member with an open session, so it is read from the store only
# when the store's head differs from the one it was parsed with (after a recovery or a
# rebalance) or after a revocation.
_indexes: dict[int, pindex.Stored] = {}


def _load_index(partition: int) -> pindex.Stored:
    """The partition's clock and its members with an open session, each with the epoch second
    at which the clock alone would close that session (`MemberState.open_deadline`); any
    format a worker of this release or of the two before wrote (services/state_format.py)."""
    head = INDEX.get(partition, pindex.head_key(partition))
    hit = _indexes.get(partition)
    if hit is not None and hit.head == head:
        return hit
    stored = pindex.load(partition, head, INDEX.items(partition, pindex.member_prefix(partition)))
    _indexes[partition] = stored
    return stored


async def _save_index(
    outbox: Outbox,
    partition: int,
    before: pindex.Stored,
    clock: datetime | None,
    members: dict[str, int],
) -> None:
    version = settings.state_write_version
    written = pindex.writes(partition, before, clock, members, version)
    for key, value in written:
        await outbox.put(INDEX, partition, key, value)
    _indexes[partition] = pindex.after(partition, before, written, clock, members, version)


# The parsed state beside the table, so an active member's JSON is parsed once, not on every
# batch; at most SESSION_STATE_CACHE members, least recently used dropped first (settings).
# An entry is used only while the table still holds the very bytes it was parsed from, so
# after a recovery or a rebalance (new bytes in the table) the table is read again.
_parsed: OrderedDict[str, tuple[bytes, MemberState]] = OrderedDict()


def _keep_parsed(member_id: str, raw: bytes, state: MemberState) -> None:
    _parsed[member_id] = (raw, state)
    _parsed.move_to_end(member_id)
    while len(_parsed) > settings.session_state_cache:
        _parsed.popitem(last=False)


def _load_member(partition: int, member_id: str) -> MemberState:
    raw = MEMBERS.get(partition, member_id.encode())
    if not raw:
        return MemberState(member_id=member_id)
    hit = _parsed.get(member_id)
    # Equal, not identical: the RocksDB store returns new bytes on every read.
    if hit is not None and hit[0] == raw:
        _parsed.move_to_end(member_id)
        return hit[1]
    state = MemberState.model_validate_json(raw)
    _keep_parsed(member_id, raw, state)
    return state


async def _dead_letter(
    outbox: Outbox, key: bytes | None, raw: bytes, reason: str, topic: str = _CHECKINS
) -> None:
    # Through the batch's outbox: acknowledged before the batch's offsets count as applied.
    # source_topic: where `python -m services.deadletter replay` sends it back once fixed.
    headers = {
        "reason": reason[:2000].encode(),
        "source": b"pair_sessions",
        "source_topic": topic.encode(),
    }
    await outbox.send(_DEAD_LETTER, key, raw, None, headers)
    metrics.DEAD_LETTERS.labels(
        source="pair_sessions", topic=topic.removeprefix(settings.topic_prefix)
    ).inc()


@app.agent(session_input)
async def pair_sessions(stream: Any) -> AsyncIterator[None]:
    # noack_take, not take(): take() acknowledges a batch even when the body raised. The
    # acknowledgements no longer decide what is committed (the ledger does, see _process), but
    # faust's rebalance waits for them (wait_empty), so a batch's writes all land before the
    # partitions move on.
    async for events in stream.noack_take(
        settings.session_batch_size, within=settings.session_batch_within_s
    ):
        try:
            async with _exclusive:
                await _process(events)
        except Exception as exc:
            # Crash the worker: the ledger did not move, so whoever owns these partitions next
            # applies the batch again from the changelog's saved offsets.
            log.exception("session batch failed; stopping the worker")
            await app.crash(exc)
            raise
        for event in events:
            await stream.ack(event)
        yield None


# One batch at a time: the agent's and the catch-up's (streams/guarantee.py) share the ledger and
# the states.
_exclusive = asyncio.Lock()


@app.timer(interval=CATCH_UP_S)  # type: ignore[untyped-decorator]
async def catch_up() -> None:
    await _catch_up()


async def _catch_up() -> None:
    """A scan or review at the end of a partition that faust does not deliver, applied as a
    batch of its own (at most SESSION_BATCH_SIZE; `Guarantee.catch_up`). Not the clock: it is
    compacted and ticks again anyway."""
    await GUARANTEE.catch_up(
        {_CHECKINS, _REVIEWS}, _exclusive, _process, settings.session_batch_size
    )


@functools.cache
def _counter(topic: str) -> Any:
    return metrics.AGENT_SCANS.labels(kind=topic.removeprefix(settings.topic_prefix))


async def _process(events: list[Any]) -> None:
    """One batch: plan each input partition's offsets (streams/ledger.py: what faust delivered
    again is skipped, what it skipped is read directly), apply each partition's events in log
    order, publish the latest records, then save and settle the ledger."""
    batch = GUARANTEE.ledger.batch()
    outbox = Outbox()
    delivered: dict[tuple[str, int], dict[int, Any]] = {}
    order: list[tuple[str, int, int]] = []  # (topic, partition, offset) in delivery order
    for event in events:
        m = event.message
        if _faults.skip(m.topic, m.partition, m.offset):
            continue
        by_offset = delivered.setdefault((m.topic, m.partition), {})
        if m.offset not in by_offset:
            by_offset[m.offset] = event
            order.append((m.topic, m.partition, m.offset))
    # Each partition's planned offsets, in the order faust delivered them, with any it skipped
    # read and placed before the first delivered offset after them.
    planned: dict[tuple[str, int], list[int]] = {}
    for (name, part), by_offset in delivered.items():
        plan = await GUARANTEE.plan(batch, name, part, list(by_offset))
        if plan.missing:
            by_offset.update(await GUARANTEE.read(name, part, plan.missing))
        planned[(name, part)] = plan.apply
    sequence: list[Any] = []
    for tp, offsets in planned.items():
        rank = {o: n for n, (t, p, o) in enumerate(order) if (t, p) == tp}
        last = len(order)
        # A read offset takes the place of the next delivered one after it.
        for o in reversed(offsets):
            last = rank.get(o, last)
            sequence.append((last, o in rank, o, delivered[tp][o]))
    sequence.sort(key=lambda x: (x[0], x[1], x[2]))
    by_partition: dict[int, list[tuple[Any, Event]]] = {}
    for _, _, _, event in sequence:
        raw: bytes = event.value
        topic: str = event.message.topic
        _counter(topic).inc()
        try:
            parsed = parse_event(raw)
            if not isinstance(parsed, _expected(topic)):
                raise ValueError(f"unexpected event type {parsed.event_type} on {topic}")
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            await _dead_letter(outbox, event.key, raw, str(exc), topic)
            continue
        by_partition.setdefault(event.message.partition, []).append((event, parsed))
    out: list[Event] = []
    for partition, items in by_partition.items():
        out.extend(await _apply_partition(outbox, partition, items))
        # The partition's parsed states outlive the batch (the cache): out of the collector's
        # walks before they reach its old generation (services/gc_watch.py).
        gc_watch.settle()
        # A full batch is ~1 s of CPU that awaits nothing while the producer has room; let
        # timers and the consumer thread's keepalive run between partitions (the million-scan
        # drill saw timers drift 4-5 s on the shared 2 cores).
        await asyncio.sleep(0)
    await _faults.hold(len(events))
    await outbox.publish(latest_records(out))
    await outbox.delivered()
    # Only now, with the states and outputs acknowledged, the offsets count as applied: saved
    # last, so a worker that dies before this re-applies the batch (the rules recognise its
    # events and publish their latest records again) instead of skipping it.
    saved = Outbox()
    for p, value in GUARANTEE.to_save(batch).items():
        await saved.put(INDEX, p, applied_key(p).encode(), value)
    await saved.delivered()
    batch.settle()


async def _apply_partition(
    outbox: Outbox, partition: int, items: list[tuple[Any, Event]]
) -> list[Event]:
    """Applies one partition's events in log order, then saves each touched state once."""
    stored = _load_index(partition)
    clock, open_members = stored.clock, dict(stored.members)
    states: dict[str, MemberState] = {}
    dirty: set[str] = set()
    out: list[Event] = []

    def state_of(member_id: str) -> MemberState:
        if member_id not in states:
            states[member_id] = _load_member(partition, member_id)
        return states[member_id]

    def settle(member_id: str, old: MemberState, new: MemberState) -> None:
        if new is not old:
            states[member_id] = new
            dirty.add(member_id)
        deadline = new.open_deadline(RULES)
        if deadline is None:
            open_members.pop(member_id, None)
        else:
            open_members[member_id] = int(deadline.timestamp())

    for event, parsed in items:
        if isinstance(parsed, ClockTicked):
            now = parsed.occurred_at
            clock = max(clock, now) if clock else now
            # Only members whose open session the clock closes now: a tick that re-derived
            # and re-saved every open member cost O(open members) per partition and tick,
            # which at 100,000 members blocked the loop for seconds (the million-scan drill).
            due_at = clock.timestamp()
            for member_id in sorted(m for m, dl in open_members.items() if dl <= due_at):
                old = state_of(member_id)
                new, produced = on_clock(old, parsed.event_id, clock, RULES)
                out.extend(produced)
                settle(member_id, old, new)
            continue
        member_id = parsed.member_id  # type: ignore[attr-defined]
        old = state_of(member_id)
        try:
            if isinstance(parsed, CheckinScanned):
                new, produced = on_scan(old, parsed, RULES, clock)
            else:
                assert isinstance(parsed, SessionReviewed)
                new, produced = on_review(old, parsed, RULES)
        except LateScan as exc:
            await _dead_letter(outbox, event.key, event.value, str(exc), event.message.topic)
            continue
        out.extend(produced)
        settle(member_id, old, new)

    for member_id in sorted(dirty):
        state = states[member_id]
        # In the format every worker of the group reads (STATE_WRITE_VERSION, docs/upgrades.md).
        raw_state = state_format.dump_member(state, settings.state_write_version)
        await outbox.put(MEMBERS, partition, member_id.encode(), raw_state)
        _keep_parsed(member_id, raw_state, state)
    await _save_index(outbox, partition, stored, clock, open_members)
    return out


@app.on_partitions_revoked.connect
async def _forget_parsed(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    # Members of partitions that moved away would otherwise stay parsed here for good.
    _parsed.clear()
    _indexes.clear()


@app.timer(interval=settings.session_tick_s)  # type: ignore[untyped-decorator]
async def tick_session_clock() -> None:
    """Produces the clock into each clock partition this worker owns (see events.ClockTicked)."""
    now = utcnow()
    for tp in sorted(app.assignor.assigned_actives()):
        if not isinstance(tp, TP) or tp.topic != _CLOCK:
            continue
        tick = ClockTicked(
            event_id=derived_id("tick", tp.topic, str(tp.partition), now.isoformat()),
            occurred_at=now,
            partition=tp.partition,
        )
        await clock_topic.send(
            key=f"p{tp.partition}".encode(), value=tick.to_bytes(), partition=tp.partition
        )
