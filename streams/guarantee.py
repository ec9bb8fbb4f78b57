"""An agent's applied offsets, wired to faust: where each partition starts, what is committed,
and the seek back over a hole (the rule itself: streams/ledger.py).

Each agent keeps its saved offsets in one of its own changelog-backed tables, under a key per
partition (`applied-p<n>`: JSON `{topic: next offset}`), written after the effects of the
events before them; a worker that takes a partition over starts there.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from faust.types import TP

from services import metrics
from streams import faust_fixes
from streams.ledger import Batch, Ledger, Verdict

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
        gapped_topics: frozenset[str] = frozenset(),
        prefix: str = "",
    ) -> None:
        self.app = app
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

    def admit(self, batch: Batch, topic: str, partition: int, offset: int) -> bool:
        """Whether this message is the next one of its partition: apply it (else it was applied
        before, or offsets before it were skipped and it comes again after the seek)."""
        tp = (topic, partition)
        if not self.ledger.knows(tp):
            self._start(tp)
        verdict = batch.verdict(tp, offset)
        if verdict is Verdict.SEEN:
            self._redelivered(topic).inc()
        return verdict is Verdict.APPLY

    def _start(self, tp: tuple[str, int]) -> None:
        """Where the table says the state stands; with nothing saved (a state written before
        the ledger existed, or none), the offset faust sought to: the committed one."""
        topic, partition = tp
        saved = self.saved(partition).get(topic)
        if saved is not None:
            self.ledger.start(tp, saved)
            return
        consumer: Any = self.app.consumer  # faust keeps the committed offsets it sought to here
        committed = consumer._committed_offset.get(TP(topic, partition))
        if committed is None:
            # Nothing committed either: the group reads from the earliest offset
            # (consumer_auto_offset_reset), and the first event delivered is the start.
            self.ledger.start_at_first(tp)
        else:
            self.ledger.start(tp, int(committed))

    def to_save(self, batch: Batch) -> dict[int, bytes]:
        """The saved offsets this batch moves: partition -> the value of `applied_key`."""
        by_partition: dict[int, dict[str, int]] = {}
        for (topic, partition), offset in batch.advanced().items():
            by_partition.setdefault(partition, {})[topic] = offset
        return {
            p: json.dumps({**self.saved(p), **offsets}, sort_keys=True).encode()
            for p, offsets in by_partition.items()
        }

    async def seek_holes(self, batch: Batch) -> None:
        """Seek back to the first offset faust skipped, so it is delivered again. During a
        rebalance faust seeks every partition to its committed offset itself (and the ledger
        starts again from the table), so nothing is sought then."""
        seeks = batch.seeks(time.monotonic())
        if not seeks or not self.app.flow_control.is_active():
            return
        for (topic, partition), offset in seeks.items():
            self._holes(topic).inc()
            log.warning(
                "offsets skipped before %s[%d]; seeking back to %d", topic, partition, offset
            )
            await self.app.consumer.seek(TP(topic, partition), offset)
        batch.sought(seeks, time.monotonic())

    @functools.cache  # noqa: B019 - one label child per topic, for the process's life
    def _redelivered(self, topic: str) -> Any:
        return metrics.AGENT_REDELIVERED.labels(topic=topic.removeprefix(self._prefix))

    @functools.cache  # noqa: B019
    def _holes(self, topic: str) -> Any:
        return metrics.AGENT_HOLES.labels(topic=topic.removeprefix(self._prefix))
