"""streams.faust_fixes: the committed offset after a bogus gap (no broker; faust's bookkeeping
only). The numbers are those of a worker restarted under a backlog (streams/faust_fixes.py)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from streams import faust_fixes
from tests.support.stack import run_async

TP1 = TP("checkins", 1)


GENERATION = 4


@pytest.fixture(autouse=True)
def _no_ledger() -> Iterator[None]:
    """faust's own bookkeeping, as for a topic no agent's ledger commits (the session agent,
    when imported by another test, registers its topics)."""
    saved = dict(faust_fixes._ledgered)
    faust_fixes._ledgered.clear()
    yield
    faust_fixes._ledgered.clear()
    faust_fixes._ledgered.update(saved)


def consumer(
    committed: int,
    acked: list[int],
    gap: tuple[int, int] | None,
    in_flight: list[int],
    stale: list[int] | None = None,
) -> Any:
    c = SimpleNamespace(
        app=SimpleNamespace(consumer_generation_id=GENERATION),
        _acked=defaultdict(list),
        _acked_index=defaultdict(set),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None),
        _unacked_messages=[
            *(SimpleNamespace(tp=TP1, offset=o, generation_id=GENERATION) for o in in_flight),
            # Delivered before the last rebalance: faust's streams skip these, never ack them.
            *(SimpleNamespace(tp=TP1, offset=o, generation_id=GENERATION - 1) for o in stale or []),
        ],
    )
    c._committed_offset[TP1] = committed
    c._acked[TP1] = list(acked)
    c._acked_index[TP1] = set(acked)
    if gap is not None:
        # faust's _add_gap(tp, r_offset + 1, offset): the end is inclusive there.
        c._gap[TP1].addi(gap[0], gap[1] + 1)
    return c


def ack(c: Any, *offsets: int) -> None:
    for o in offsets:
        c._acked[TP1].append(o)
        c._acked_index[TP1].add(o)
        c._unacked_messages = [m for m in c._unacked_messages if m.offset != o]


def test_a_bogus_gap_over_delivered_events_no_longer_holds_the_commit_back() -> None:
    # Events 3382-3485 were delivered and acknowledged during the seek; the seek reset the read
    # offset to 3382, so 3486 looked like a jump: gap 3383-3486. 3486 is still being processed.
    c = consumer(3382, list(range(3382, 3486)), (3383, 3486), in_flight=[3486])
    assert faust_fixes.new_offset(c, TP1) == 3486  # up to the event in flight, not past it
    c._committed_offset[TP1] = 3486  # what faust's commit() records
    ack(c, 3486, 3487)
    assert faust_fixes.new_offset(c, TP1) == 3488
    assert c._acked[TP1] == [] and not c._gap[TP1]


def test_faust_own_bookkeeping_creeps_on_the_same_gap() -> None:
    # Why the fix exists: faust 0.15.3 counts every gap offset a second time, so the
    # contiguous run ends after an offset or two. If this fails, faust changed: re-check
    # whether streams.faust_fixes is still needed.
    c = consumer(3382, list(range(3382, 3486)), (3383, 3486), in_flight=[3486])
    own = Consumer._new_offset
    if own is faust_fixes.new_offset:
        own = faust_fixes.ORIGINAL_NEW_OFFSET
    first = own(c, TP1)
    assert first is not None and first <= 3385


def test_a_message_left_from_an_earlier_generation_does_not_hold_the_commit() -> None:
    c = consumer(100, [100, 101, 102, 106], (103, 105), in_flight=[], stale=[104])
    assert faust_fixes.new_offset(c, TP1) == 107


def test_a_real_gap_still_counts_as_done() -> None:
    # Offsets never delivered (compaction, transaction markers) must not block the commit.
    c = consumer(100, [100, 105, 106], (101, 105), in_flight=[])
    assert faust_fixes.new_offset(c, TP1) == 107


def test_a_hole_at_the_head_waits() -> None:
    c = consumer(100, [103, 104], None, in_flight=[101, 102])
    assert faust_fixes.new_offset(c, TP1) is None
    ack(c, 101, 102)  # (faust tolerates one offset at the head, as before the fix)
    assert faust_fixes.new_offset(c, TP1) == 105


def test_the_fix_is_installed_by_the_app() -> None:
    import streams.app  # noqa: F401

    assert Consumer._new_offset is faust_fixes.new_offset


def test_a_ledgered_topic_commits_where_the_ledger_says_not_where_faust_acknowledged() -> None:
    # faust acknowledged up to 3500 (skipped messages count as acknowledged there), but the
    # ledger has applied only up to 3400: the commit must not pass it.
    c = consumer(3382, list(range(3382, 3500)), None, in_flight=[])
    applied = {TP1: 3400}
    faust_fixes.commit_from(applied.get, {TP1.topic})
    assert faust_fixes.new_offset(c, TP1) == 3400
    # faust's own bookkeeping for the topic is dropped, so it cannot grow.
    assert c._acked[TP1] == [] and not c._acked_index[TP1]
    # Nothing new applied since the last commit: nothing to commit.
    c._committed_offset[TP1] = 3400
    assert faust_fixes.new_offset(c, TP1) is None
    applied.clear()
    assert faust_fixes.new_offset(c, TP1) is None


def test_a_negative_changelog_start_is_read_from_the_first_record() -> None:
    sought: dict[Any, int] = {}

    class Consumer:
        async def seek_wait(self, offsets: dict[Any, int]) -> None:
            sought.update(offsets)

    tps = {TP("changelog", 0), TP("changelog", 1), TP("changelog", 2), TP("changelog", 3)}
    offsets: Counter[TP] = Counter(
        {TP("changelog", 0): -2, TP("changelog", 1): -1, TP("changelog", 2): 7}
    )
    offsets[TP("changelog", 3)] = None  # type: ignore[assignment]  # what faust stores
    # In a thread of its own: the browser tests keep an event loop running in this one.
    run_async(faust_fixes.seek_offsets(None, Consumer(), tps, offsets, "active"))
    assert sought == {
        TP("changelog", 0): 0,
        TP("changelog", 1): 0,
        TP("changelog", 2): 7,
        TP("changelog", 3): 0,
    }


# ---- a stop that stops (issue 13) ------------------------------------------------------------


def test_a_consumer_that_fails_to_close_still_lets_its_thread_report_its_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def stop_like_aiokafka_without_a_broker(self: Any) -> None:
        # aiokafka's Fetcher.close(): cancel the task retrying a fetch, then await it.
        fetch = asyncio.ensure_future(asyncio.sleep(60))
        await asyncio.sleep(0)
        fetch.cancel()
        await fetch

    monkeypatch.setattr(faust_fixes, "ORIGINAL_ON_THREAD_STOP", stop_like_aiokafka_without_a_broker)
    run_async(faust_fixes.on_thread_stop(None))  # returns: mode goes on to set_shutdown()

    async def cancelled_itself() -> None:
        monkeypatch.setattr(faust_fixes, "ORIGINAL_ON_THREAD_STOP", lambda self: asyncio.sleep(60))
        task = asyncio.ensure_future(faust_fixes.on_thread_stop(None))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_async(cancelled_itself())


def test_aiokafka_and_mode_still_lose_the_consumer_threads_shutdown() -> None:
    # Why on_thread_stop is wrapped: aiokafka's Fetcher.close() re-raises its cancelled fetch
    # tasks' CancelledError, and mode's thread reports its shutdown only for an Exception. If
    # this fails, either changed: re-check whether streams.faust_fixes.on_thread_stop is needed.
    from aiokafka.consumer.fetcher import Fetcher  # type: ignore[import-untyped]
    from mode.threads import ServiceThread

    close = inspect.getsource(Fetcher.close)
    assert ".cancel()" in close and "await x" in close
    start = inspect.getsource(ServiceThread._start_thread)
    assert "except Exception:" in start and "BaseException" not in start


def test_a_stop_that_does_not_finish_ends_the_process_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exited: list[int] = []
    done = threading.Event()

    def fake_exit(status: int) -> None:
        exited.append(status)
        done.set()

    monkeypatch.setattr(faust_fixes.os, "_exit", fake_exit)
    monkeypatch.setattr(faust_fixes, "_deadline", None)
    faust_fixes.start_stop_deadline(0.2)
    faust_fixes.start_stop_deadline(0.01)  # idempotent: the first deadline stands
    assert not done.wait(0.1)
    assert done.wait(5) and exited == [faust_fixes.FORCED_EXIT_STATUS]


def test_the_stop_deadline_is_installed_by_the_app() -> None:
    from mode.worker import Worker

    import streams.app

    assert Worker._schedule_shutdown is faust_fixes.schedule_shutdown
    assert Worker.stop_and_shutdown is faust_fixes.stop_and_shutdown
    assert Worker._install_signal_handlers_unix is faust_fixes.install_signal_handlers_unix
    assert streams.app.settings.worker_stop_timeout_s == 25.0  # read when a stop begins


# ---- one message delivered without four tasks ------------------------------------------------


def test_faust_still_races_each_delivery_against_the_flow_with_wait_first() -> None:
    """Canary: the call site the fix relies on. When faust changes `_drain_messages`, the fix
    (and its proposal upstream) must be looked at again."""
    source = inspect.getsource(Consumer._drain_messages)
    assert "await self.wait_first(" in source
    assert "callback(message), self.suspend_flow.wait()" in source
    assert Consumer.wait_first is faust_fixes.wait_first


class Flow:
    """What `wait_first` needs of the consumer: `suspend_flow`, the service events."""

    def __init__(self) -> None:
        from mode import Service

        self.service = Service()
        self.suspend_flow = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.service, name)


def test_a_delivery_that_does_not_wait_makes_no_task() -> None:
    async def main() -> tuple[int, list[str]]:
        consumer = Flow()
        delivered: list[str] = []

        async def deliver(m: str) -> str:
            delivered.append(m)
            return m

        before = len(asyncio.all_tasks())
        made = 0
        original = asyncio.ensure_future

        def counting(*a: Any, **kw: Any) -> Any:
            nonlocal made
            made += 1
            return original(*a, **kw)

        asyncio.ensure_future = counting  # type: ignore[assignment]
        try:
            for m in ("a", "b", "c"):
                res = await faust_fixes.wait_first(
                    consumer, deliver(m), consumer.suspend_flow.wait()
                )
                assert res.results == [m] and not res.stopped
        finally:
            asyncio.ensure_future = original  # type: ignore[assignment]
        assert len(asyncio.all_tasks()) == before
        return made, delivered

    made, delivered = run_async(main())
    assert delivered == ["a", "b", "c"]
    # mode's wait_first makes four per message: the fix none.
    assert made == 0


def test_a_delivery_that_waits_completes_or_is_abandoned_when_the_flow_is_suspended() -> None:
    async def main() -> tuple[list[str], bool]:
        consumer = Flow()
        room = asyncio.Event()
        log: list[str] = []

        async def deliver(m: str) -> str:
            log.append(f"start {m}")
            await room.wait()  # a full stream buffer
            log.append(f"put {m}")
            return m

        # The buffer gets room: the delivery finishes, through the ordinary race.
        task = asyncio.ensure_future(
            faust_fixes.wait_first(consumer, deliver("a"), consumer.suspend_flow.wait())
        )
        await asyncio.sleep(0.01)
        assert log == ["start a"]
        room.set()
        res = await task
        assert res.results[0] == "a"
        # A rebalance suspends the flow while the buffer is full: the delivery is abandoned.
        room.clear()
        task = asyncio.ensure_future(
            faust_fixes.wait_first(consumer, deliver("b"), consumer.suspend_flow.wait())
        )
        await asyncio.sleep(0.01)
        consumer.suspend_flow.set()
        res = await asyncio.wait_for(task, 5)  # never awaits the full buffer
        abandoned = "put b" not in log and res.results == [True]
        room.set()
        await asyncio.sleep(0.01)
        return log, abandoned and "put b" not in log

    log, abandoned = run_async(main())
    assert log == ["start a", "put a", "start b"]
    assert abandoned


def test_a_delivery_that_fails_raises_as_before() -> None:
    async def main() -> None:
        consumer = Flow()

        async def deliver() -> None:
            raise ValueError("undecodable")

        with pytest.raises(ValueError, match="undecodable"):
            await faust_fixes.wait_first(consumer, deliver(), consumer.suspend_flow.wait())

    run_async(main())
