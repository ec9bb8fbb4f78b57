"""faust-streaming's (0.15.3) offset commits, patched on import.

For the topics of an agent with a ledger (`commit_from`; streams/ledger.py, docs/delivery.md)
the committed offset is the ledger's: every message before it applied and its effects
acknowledged; faust's acknowledgements, which can pass a message never processed, are ignored.

For any other topic, a fix of faust's gap bookkeeping after a rebalance:

The bug (reproduced in drills a and e, and alone with a worker killed and restarted under a
backlog): faust commits the highest *contiguous* acknowledged offset of each partition
(`Consumer._new_offset`). After an assignment, `Recovery._restart_recovery` resumes the stream
partitions *before* it awaits `perform_seek()`; while that await fetches the committed offsets,
the fetcher delivers a few hundred events, which the agent processes and acknowledges. The seek
then resets faust's read offset to the committed one, the next event looks like a jump, and
faust records the offsets in between as a *gap* (offsets it believes were never delivered, as
in a compacted topic). `_new_offset` appends every gap offset to the acknowledged list, but
those events *were* delivered: each of them is now in the list twice, and the contiguous run
ends after one or two offsets. The committed offset then crept ~1 offset a second for minutes
while processing ran normally (here: ~100 s for 6,000 events; in drill a ~110 s then a jump of
~13,000): a second crash in that window replays all of it, and the lag overstates the backlog.
Reported upstream as robinhood/faust#559 and #625; faust-streaming/faust#606 is still open.

The fix: a gap offset counts as done only if it is neither acknowledged already (that would be
a duplicate) nor delivered in the current generation and still in flight (committing past it
could lose it on a crash; it joins the list when the agent acknowledges it). A real gap, an
offset never delivered, still counts as done, as faust intends; so does the offset of a message
left from before a rebalance, which faust's streams skip and never acknowledge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from signal import SIGHUP
from typing import Any

from faust.stores.rocksdb import Store as RocksStore
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from faust.utils.functional import consecutive_numbers
from mode.services import WaitResults
from mode.worker import Worker

log = logging.getLogger(__name__)

ORIGINAL_NEW_OFFSET = Consumer._new_offset

# Topics whose commits an agent's ledger decides (streams/ledger.py), and how.
_ledgered: dict[str, Callable[[TP], int | None]] = {}


def commit_from(committable: Callable[[TP], int | None], topics: set[str]) -> None:
    """The offsets of these topics are committed where `committable` says (an agent's ledger:
    every message before it applied, its effects acknowledged), never from faust's
    acknowledgements, which can pass a message that was skipped (streams/ledger.py)."""
    for topic in topics:
        _ledgered[topic] = committable


def new_offset(self: Any, tp: TP) -> int | None:
    """`Consumer._new_offset` with gap offsets filtered as described above; otherwise the
    same: the offset after the first contiguous run of acknowledged offsets, or None. For a
    ledgered topic, the ledger's offset (faust's bookkeeping of it is dropped, not to grow)."""
    committable = _ledgered.get(tp.topic)
    if committable is not None:
        self._acked[tp].clear()
        self._acked_index[tp].clear()
        self._gap.pop(tp, None)
        offset = committable(tp)
        committed = self._committed_offset[tp]
        return offset if offset is not None and (committed is None or offset > committed) else None
    acked: list[int] = self._acked[tp]
    if not acked:
        return None
    gaps = self._gap[tp]
    if gaps:
        max_offset = max(acked)
        candidates = sorted(gaps.overlap(0, max_offset), key=lambda iv: iv.begin)
        if candidates:
            # Already acknowledged, or delivered in this generation and not yet acknowledged.
            # A message of an earlier generation is never acknowledged (faust's streams skip
            # it after a rebalance), so it must not hold the commit back for good.
            gen = self.app.consumer_generation_id
            skip = set(acked) | {
                m.offset
                for m in list(self._unacked_messages)
                if m.tp == tp and m.generation_id in (None, gen)
            }
            end = max_offset + 1
            for iv in candidates:
                acked.extend(o for o in range(iv.begin, iv.end) if o not in skip)
                end = max(end, iv.end)
            gaps.chop(0, end)
    acked.sort()
    committed = self._committed_offset[tp]
    # A hole at the head (an offset after the committed one not acknowledged yet): wait.
    if committed and min(acked) - committed > 1:
        return None
    batch = next(consecutive_numbers(acked))
    acked[: len(batch)] = []
    self._acked_index[tp].difference_update(batch)
    return int(batch[-1]) + 1


async def seek_offsets(
    self: Any, consumer: Any, tps: set[TP], offsets: Counter[TP], title: str
) -> None:
    """`Recovery._seek_offsets` without its crash: faust maps a changelog start offset of -1 to
    0 but passes None (no offset known for the partition) and any other negative one on to
    aiokafka, which raises `ValueError('Offset must be a positive integer')` and takes the
    worker down (the rebalance-storm drills: up to 14 crashes in a run). Both mean "before the
    first record": read the partition from offset 0."""
    await consumer.seek_wait({tp: _start_offset(offsets[tp]) for tp in tps})


def _start_offset(offset: int | None) -> int:
    return 0 if offset is None else max(int(offset), 0)


# ---- a stop that stops (issue 13) ------------------------------------------------------------
#
# A worker told to stop after its broker went away did not exit: aiokafka's `Fetcher.close()`
# cancels its fetch tasks and awaits them, so the task retrying a fetch against the dead broker
# re-raises its CancelledError out of `AIOKafkaConsumer.stop()`, out of faust's
# `AIOKafkaConsumerThread.on_thread_stop()` and out of mode's `ServiceThread._serve()` before
# it signals the main thread that the consumer thread shut down; `_start_thread` re-sets that
# signal only for an `Exception`, and CancelledError is not one. The main thread then waits
# mode's `shutdown_timeout` (60 s) for it, and faust goes on to flush its producer, which
# with records pending (a clock tick every SESSION_TICK_S) waits up to the producer's request
# timeout (20 minutes) for a broker that is gone. Meanwhile aiokafka's clients retry their
# connections every few milliseconds: the 70% of a core seen on orphaned workers.
#
# Two fixes: the consumer thread's stop survives its consumer's failure to close (so the thread
# reports its shutdown at once), and a deadline from the moment a stop begins after which the
# process exits whatever is still waiting. Exiting early loses nothing: what a worker commits
# comes from its ledger (streams/ledger.py): only offsets whose effects Kafka acknowledged.

ORIGINAL_ON_THREAD_STOP = AIOKafkaConsumerThread.on_thread_stop
ORIGINAL_SCHEDULE_SHUTDOWN = Worker._schedule_shutdown
ORIGINAL_STOP_AND_SHUTDOWN = Worker.stop_and_shutdown
# Exit status of a stop the deadline cut short (a supervisor sees it was not clean).
FORCED_EXIT_STATUS = 70

_stop_timeout_s: float | None = None
_deadline: threading.Timer | None = None
_deadline_lock = threading.Lock()


async def on_thread_stop(self: Any) -> None:
    """faust's `AIOKafkaConsumerThread.on_thread_stop` whose consumer may fail to close (no
    broker): logged, and the thread's shutdown goes on instead of dying unreported."""
    try:
        await ORIGINAL_ON_THREAD_STOP(self)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # this task itself is being cancelled: not a child's leftover
        log.warning("the Kafka consumer did not close cleanly (a fetch was cancelled)")
    except Exception as exc:
        log.warning("the Kafka consumer did not close cleanly: %r", exc)


def _force_exit(timeout_s: float) -> None:
    log.error(
        "the worker did not stop within %.0f s (WORKER_STOP_TIMEOUT_S; broker unreachable?): "
        "exiting without waiting further; what it committed was applied (its ledger), the rest "
        "is read again by the partitions' next owner",
        timeout_s,
    )
    for stream in (sys.stdout, sys.stderr):
        # Exiting anyway: a closed stream must not stop it.
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(FORCED_EXIT_STATUS)


def start_stop_deadline(timeout_s: float | None = None) -> None:
    """From now on the process has `timeout_s` (default: WORKER_STOP_TIMEOUT_S) to exit;
    idempotent."""
    global _deadline
    timeout = timeout_s if timeout_s is not None else _stop_timeout_s
    if timeout is None:
        from services.settings import get_settings

        timeout = get_settings().worker_stop_timeout_s
    with _deadline_lock:
        if _deadline is not None:
            return
        _deadline = threading.Timer(timeout, _force_exit, args=(timeout,))
        _deadline.daemon = True
        _deadline.name = "stop-deadline"
        _deadline.start()


def schedule_shutdown(self: Any, signal: Any) -> None:
    start_stop_deadline()
    ORIGINAL_SCHEDULE_SHUTDOWN(self, signal)


def stop_and_shutdown(self: Any) -> None:
    # Also when the worker stops without a signal (a crashed agent): the same bound.
    start_stop_deadline()
    ORIGINAL_STOP_AND_SHUTDOWN(self)


ORIGINAL_INSTALL_SIGNAL_HANDLERS = Worker._install_signal_handlers_unix


def install_signal_handlers_unix(self: Any) -> None:
    """mode's handlers, and SIGHUP (a closed terminal) stopping the worker as SIGTERM does
    instead of ending it on the spot (its default)."""
    ORIGINAL_INSTALL_SIGNAL_HANDLERS(self)
    self.loop.add_signal_handler(SIGHUP, self._on_sigterm)


# ---- one message delivered without four tasks (issue 16) ----------------------------------
#
# faust's fetcher hands each message to the streams with
# `await self.wait_first(callback(message), self.suspend_flow.wait())` (`Consumer.
# _drain_messages`): the delivery races a rebalance suspending the flow, so that a delivery
# blocked on a full stream buffer is abandoned when the partitions move. mode's `wait_first`
# makes that race with four tasks per message (the delivery, the flow, the service's stopped
# and crashed events), an `asyncio.wait` and three cancellations: in the profile of the worker,
# ~40 µs of CPU per message, most of what faust itself costs per event (bench/findings.md,
# section 6). Yet the delivery almost never waits: it decodes the message and puts it into a
# stream's buffer that has room.
#
# The fix (proposed upstream as the same change to `_drain_messages`): while the flow is not
# suspended, the delivery runs one step right away; finished (the common case), it is done, with
# no task made; suspended (a full buffer), its remainder joins the same race as before, so a
# rebalance still abandons it. The result is the same either way: `_drain_messages` ignores
# what `wait_first` returns and only needs it to return once the delivery is done or the flow
# is suspended.

ORIGINAL_WAIT_FIRST = Consumer.wait_first


class _Remainder:
    """What is left of a coroutine that suspended after its first step, awaitable by a task:
    it yields what the coroutine yields and passes back what the task sends or throws."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Any:
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> Any:
    """`Service.wait_first` for the consumer: the delivery race of `_drain_messages` (a
    coroutine and the flow's wait, no timeout) without tasks when the delivery does not wait."""
    if (
        len(coros) == 2
        and timeout is None
        and asyncio.iscoroutine(coros[0])
        and asyncio.iscoroutine(coros[1])
        and not self.suspend_flow.is_set()
    ):
        delivery, flow = coros
        try:
            yielded = delivery.send(None)
        except StopIteration as stop:
            flow.close()
            return WaitResults([delivery], [stop.value], False)
        except BaseException:
            flow.close()
            raise
        return await ORIGINAL_WAIT_FIRST(self, _Remainder(delivery, yielded), flow)
    return await ORIGINAL_WAIT_FIRST(self, *coros, timeout=timeout)


# ---- a revoked partition's database stays closed (issue 16, `rocksclose`) ---------------------
#
# faust's RocksDB store closes a revoked partition's database by dropping it: `Store.
# revoke_partitions` pops the `Rdict` from `_dbs` with `# db.close()` commented out
# (faust-streaming/faust#96 went back to relying on the reference count after #82 had added
# the close; still so upstream), and with no other reference CPython frees it there and then:
# the LOCK is released (tests/unit/test_rocks_revoke.py, tests/integration/test_rocks_revoke.py).
#
# What kept some open: faust itself opening them again right after. Its recovery buffers
# standby changelog records (`Recovery.buffers`) and, once the rebalance is done,
# `_restart_recovery` flushes them with `apply_changelog_batch`, which opens the database of
# every partition in the buffer through `_db_for_partition`, including one the rebalance just
# took away (seen in about one three-worker run in three under scans: the partition's database
# opened again 30 ms after faust closed it). Such a database stays open (its LOCK, files,
# memtables and block cache) until the partition comes back and leaves again, and its persisted
# offset moves over records of a partition the worker no longer follows.
#
# The fix: changelog records of a partition this worker is assigned neither as active nor as
# standby are not applied. Nothing is lost: the store's persisted offset does not move over
# them, so when the partition comes back its recovery reads them from the changelog.

ORIGINAL_APPLY_CHANGELOG_BATCH = RocksStore.apply_changelog_batch


def apply_changelog_batch(self: Any, batch: Any, to_key: Any, to_value: Any) -> None:
    """`Store.apply_changelog_batch` without the records of partitions this worker is not
    assigned (active or standby): their databases stay closed."""
    assignor = self.app.assignor
    owned = assignor.assigned_actives() | assignor.assigned_standbys()
    events = list(batch)
    kept = [e for e in events if e.message.tp in owned]
    if len(kept) < len(events):
        log.info(
            "%d changelog records of partitions no longer assigned here not applied: %s",
            len(events) - len(kept),
            sorted({str(e.message.tp) for e in events if e.message.tp not in owned}),
        )
    if kept:
        ORIGINAL_APPLY_CHANGELOG_BATCH(self, kept, to_key, to_value)


def apply(stop_timeout_s: float | None = None) -> None:
    """Patches faust (and mode's worker); `stop_timeout_s`: the bound on a stop (None: the
    settings' WORKER_STOP_TIMEOUT_S, read when a stop begins)."""
    global _stop_timeout_s
    _stop_timeout_s = stop_timeout_s
    Consumer._new_offset = new_offset  # type: ignore[method-assign]
    Consumer.wait_first = wait_first  # type: ignore[method-assign]
    Recovery._seek_offsets = seek_offsets  # type: ignore[method-assign]
    RocksStore.apply_changelog_batch = apply_changelog_batch  # type: ignore[method-assign]
    AIOKafkaConsumerThread.on_thread_stop = on_thread_stop  # type: ignore[method-assign]
    Worker._schedule_shutdown = schedule_shutdown  # type: ignore[method-assign]
    Worker.stop_and_shutdown = stop_and_shutdown  # type: ignore[method-assign]
    Worker._install_signal_handlers_unix = install_signal_handlers_unix  # type: ignore[method-assign]
