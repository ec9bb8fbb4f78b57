"""Which input offsets an agent has applied: the one source of the offsets it commits.

faust-streaming (0.15.3) decides what to commit from what its streams acknowledged, and several
of its paths acknowledge a message that was never processed or let the commit pass one: a
stream *skips and acknowledges* a message fetched before a rebalance (stale generation) or
while flow control is suspended; the fetcher marks a message read when a rebalance cancels its
delivery; and the gap bookkeeping counts offsets it never delivered again after a seek as done
(`streams/faust_fixes.py`). Each opens a window, widest when the worker is behind, in which the
committed offset passes a scan whose effect is not in the state: a check-out lost, the session
capped at 8 h (drill e, issue 18).

The ledger closes all of them at once by not depending on faust's acknowledgements at all. Per
input partition it keeps `next`: the offset of the first message whose effect is not yet in the
state. The agent moves it only over a contiguous run of offsets it applied and whose states and
outputs Kafka acknowledged; the commit never passes it. A message below `next` was applied
before (a redelivery): skipped without touching the state. A message above `next` on a topic
that is not compacted means faust skipped some offsets (a *hole*): nothing from there on is
applied, and the agent seeks the partition back to `next`, so the skipped scans come again.
`next` is also saved in the agent's changelog after each batch's outputs, so the worker that
takes the partition over starts from what the state holds, whatever offset was committed.

Pure: no faust, no I/O; the agent drives it (streams/agents/sessions.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

TopicPartition = tuple[str, int]
# A partition started with nothing saved and nothing committed: its first message is the start.
_FIRST = -1


class Verdict(Enum):
    APPLY = "apply"  # the next offset: apply it
    SEEN = "seen"  # below next: applied before, skip it
    HOLE = "hole"  # above next on a topic without gaps: offsets were skipped; seek back


@dataclass
class Ledger:
    # Topics whose offsets may legitimately jump (compacted ones: only the latest tick counts).
    gapped_topics: frozenset[str] = frozenset()
    # How long to wait for the offsets a seek asked for before asking again: messages fetched
    # before the seek may still be on their way and must not trigger a seek each.
    reseek_after_s: float = 2.0
    _next: dict[TopicPartition, int] = field(default_factory=dict)
    _seeks: dict[TopicPartition, tuple[int, float]] = field(default_factory=dict)

    def knows(self, tp: TopicPartition) -> bool:
        return tp in self._next

    def start(self, tp: TopicPartition, next_offset: int) -> None:
        """Where a newly owned partition's state stands (from the changelog, else the committed
        offset faust sought to)."""
        self._next[tp] = next_offset
        self._seeks.pop(tp, None)

    def start_at_first(self, tp: TopicPartition) -> None:
        """Nothing saved and nothing committed: the group reads the partition from its earliest
        offset, and the first message delivered is where the state starts."""
        self.start(tp, _FIRST)

    def next(self, tp: TopicPartition) -> int | None:
        n = self._next.get(tp)
        return None if n == _FIRST else n

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions revoked: whoever owns them next starts from the changelog."""
        for tp in tps:
            self._next.pop(tp, None)
            self._seeks.pop(tp, None)

    def forget_all(self) -> None:
        self._next.clear()
        self._seeks.clear()

    def committable(self, tp: TopicPartition) -> int | None:
        """The offset that may be committed: every message before it is applied and its
        effects are acknowledged by Kafka."""
        return self.next(tp)

    def batch(self) -> Batch:
        return Batch(self)


@dataclass
class Batch:
    """One batch's view: a cursor per partition moved tentatively, applied to the ledger only
    when the batch's effects are durable (`settle`)."""

    ledger: Ledger
    cursor: dict[TopicPartition, int] = field(default_factory=dict)
    holes: dict[TopicPartition, int] = field(default_factory=dict)

    def verdict(self, tp: TopicPartition, offset: int) -> Verdict:
        nxt = self.cursor.get(tp, self.ledger._next.get(tp))
        if nxt is None:
            # Never seen: the agent starts every partition before its first event.
            raise KeyError(f"ledger has no start for {tp}")
        if nxt == _FIRST:
            self.cursor[tp] = offset + 1
            return Verdict.APPLY
        if offset < nxt:
            return Verdict.SEEN
        if offset == nxt or tp[0] in self.ledger.gapped_topics:
            # Only the very next offset is applied: past a hole nothing is, until the skipped
            # offsets come again (then the hole is closed and the run goes on).
            self.cursor[tp] = offset + 1
            self.holes.pop(tp, None)
            return Verdict.APPLY
        self.holes[tp] = nxt
        return Verdict.HOLE

    def seeks(self, now: float) -> dict[TopicPartition, int]:
        """Partitions to seek back (to their next offset), at most once per `reseek_after_s`
        for the same offset."""
        out: dict[TopicPartition, int] = {}
        for tp, offset in self.holes.items():
            last = self.ledger._seeks.get(tp)
            if last is None or last[0] != offset or now - last[1] >= self.ledger.reseek_after_s:
                out[tp] = offset
        return out

    def sought(self, seeks: dict[TopicPartition, int], now: float) -> None:
        for tp, offset in seeks.items():
            self.ledger._seeks[tp] = (offset, now)

    def advanced(self) -> dict[TopicPartition, int]:
        """The partitions this batch moved, with their new next offsets (to save)."""
        return {tp: n for tp, n in self.cursor.items() if n != self.ledger._next.get(tp)}

    def settle(self) -> None:
        """The batch's states and outputs are acknowledged: its offsets count as applied."""
        for tp, n in self.cursor.items():
            if tp in self.ledger._next:  # not revoked meanwhile
                self.ledger._next[tp] = n
                if tp not in self.holes:
                    self.ledger._seeks.pop(tp, None)
