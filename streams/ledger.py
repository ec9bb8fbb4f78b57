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
that is not compacted means faust skipped the offsets between (a *hole*): the agent reads those
itself, straight from the partition, and applies them first, so every batch applies a contiguous
run. (Seeking faust's consumer back was tried first: under a rebalance storm faust's fetcher kept
undoing the seek and a partition stalled for good.) `next` is also saved in the agent's changelog
after each batch's outputs, so the worker that takes the partition over starts from what the
state holds, whatever offset was committed.

Pure: no faust, no I/O; the agent drives it (streams/agents/sessions.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]
# A partition started with nothing saved and nothing committed: its first message is the start.
_FIRST = -1


@dataclass(frozen=True)
class Plan:
    """What a batch does with one partition's delivered offsets."""

    apply: list[int]  # in this order: every offset from `next` on, delivered or missing
    missing: list[int]  # of those, the ones faust did not deliver: read them directly
    seen: list[int]  # delivered below `next`: applied before


@dataclass
class Ledger:
    # Topics whose offsets may legitimately jump (compacted ones: only the latest tick counts).
    gapped_topics: frozenset[str] = frozenset()
    _next: dict[TopicPartition, int] = field(default_factory=dict)

    def knows(self, tp: TopicPartition) -> bool:
        return tp in self._next

    def start(self, tp: TopicPartition, next_offset: int) -> None:
        """Where a newly owned partition's state stands (from the changelog, else the committed
        offset faust sought to)."""
        self._next[tp] = next_offset

    def start_at_first(self, tp: TopicPartition) -> None:
        """The first message delivered is where the state starts. Not what the agents use
        with nothing saved and nothing committed: faust may deliver a kept partition from past
        messages it dropped at a rebalance (streams/guarantee.py starts at the earliest
        offset)."""
        self.start(tp, _FIRST)

    def next(self, tp: TopicPartition) -> int | None:
        n = self._next.get(tp)
        return None if n == _FIRST else n

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions revoked: whoever owns them next starts from the changelog."""
        for tp in tps:
            self._next.pop(tp, None)

    def forget_all(self) -> None:
        self._next.clear()

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

    def plan(self, tp: TopicPartition, delivered: Iterable[int]) -> Plan:
        """The offsets to apply, in order, for what faust delivered of `tp` in this batch."""
        nxt = self.cursor.get(tp, self.ledger._next.get(tp))
        if nxt is None:
            # Never seen: the agent starts every partition before its first event.
            raise KeyError(f"ledger has no start for {tp}")
        offsets = sorted(set(delivered))
        if nxt == _FIRST and offsets:
            nxt = offsets[0]
        seen = [o for o in offsets if o < nxt]
        new = [o for o in offsets if o >= nxt]
        if not new:
            return Plan([], [], seen)
        if tp[0] in self.ledger.gapped_topics:
            apply, missing = new, []
        else:
            have = set(new)
            apply = list(range(nxt, new[-1] + 1))
            missing = [o for o in apply if o not in have]
        self.cursor[tp] = apply[-1] + 1
        return Plan(apply, missing, seen)

    def advanced(self) -> dict[TopicPartition, int]:
        """The partitions this batch moved, with their new next offsets (to save)."""
        return {tp: n for tp, n in self.cursor.items() if n != self.ledger._next.get(tp)}

    def settle(self) -> None:
        """The batch's states and outputs are acknowledged: its offsets count as applied."""
        for tp, n in self.cursor.items():
            if tp in self.ledger._next:  # not revoked meanwhile
                self.ledger._next[tp] = n
