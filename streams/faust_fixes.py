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

from collections import Counter
from collections.abc import Callable
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.types import TP
from faust.utils.functional import consecutive_numbers

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


def apply() -> None:
    Consumer._new_offset = new_offset  # type: ignore[method-assign]
    Recovery._seek_offsets = seek_offsets  # type: ignore[method-assign]
