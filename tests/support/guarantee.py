"""An agent's `Guarantee` (streams/guarantee.py) over a fake faust app and a fake Kafka, for the
unit tests of the catch-up: the partitions it owns, whether it rebalances, where each
partition ends, and what it read straight from Kafka."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams import faust_fixes
from streams.guarantee import Guarantee, Record


class _Signal:
    def __init__(self) -> None:
        self.receivers: list[Any] = []

    def connect(self, fn: Any) -> None:
        self.receivers.append(fn)


class FakeGuarantee(Guarantee):
    """The ledger and the catch-up as they run; Kafka's end offsets and reads faked: `end` is
    where each partition ends, `reads` every run of offsets read directly (tails and holes);
    `fail` and `end_fails` make the read and the end offsets fail (Kafka out of reach)."""

    def __init__(self, topics: set[str], owned: set[TP], end: int, prefix: str = "") -> None:
        self.crashed: list[BaseException] = []

        async def crash(exc: BaseException) -> None:
            self.crashed.append(exc)

        app = SimpleNamespace(
            should_stop=False,
            rebalancing=False,
            flow_control=SimpleNamespace(is_active=lambda: True),
            assignor=SimpleNamespace(assigned_actives=lambda: set(owned)),
            on_partitions_revoked=_Signal(),
            consumer=SimpleNamespace(_committed_offset={}),
            crash=crash,
        )
        ledgered = dict(faust_fixes._ledgered)
        super().__init__(app, topics, lambda p: None, "127.0.0.1:9", prefix=prefix)
        # Not the process's commits: these topics exist only here.
        faust_fixes._ledgered.clear()
        faust_fixes._ledgered.update(ledgered)
        self.end = end
        self.reads: list[list[int]] = []
        self.fail: BaseException | None = None
        self.end_fails: BaseException | None = None
        # How many times the earliest offset is asked in vain, and what runs while it is asked.
        self.earliest_fails = 0
        self.while_asked: Any = None

    async def end_offset(self, topic: str, partition: int) -> int:
        if self.end_fails is not None:
            raise self.end_fails
        return self.end

    async def _fetch(self, topic: str, partition: int, offsets: list[int]) -> dict[int, Record]:
        if self.fail is not None:
            raise self.fail
        self.reads.append(offsets)
        return {o: Record(b"k", b"v%d" % o, topic, partition, o) for o in offsets}

    async def _earliest(self, topic: str, partition: int) -> int:
        if self.while_asked is not None:
            await self.while_asked()
        if self.earliest_fails:
            self.earliest_fails -= 1
            raise TimeoutError()
        return 0
