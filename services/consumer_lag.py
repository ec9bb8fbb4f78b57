"""How far the worker's and the sink's consumer groups are behind the log, as the broker sees it.

Measured from the groups' committed offsets, so it covers every worker and sink process of a
deployment (however many run, on whichever hosts), not only the one asking. `GET /healthz`
reports a group beyond `HEALTH_MAX_LAG` as degraded. kafka-python only; no FastAPI here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from services.processors import ROUTES
from services.settings import Settings
from services.topics import CHECKINS, STREAMS_APP_ID

log = logging.getLogger(__name__)

TopicPart = tuple[str, int]


def group_lag(
    committed: Mapping[TopicPart, int],
    ends: Mapping[TopicPart, int],
    beginnings: Mapping[TopicPart, int],
) -> int:
    """Messages behind over every partition of the group's topics: end - committed, and for a
    partition the group never committed, end - beginning (all of it is still to be read). A
    committed offset past a stale end counts 0."""
    behind = 0
    for tp, end in ends.items():
        done = committed.get(tp, beginnings.get(tp, 0))
        behind += max(0, end - done)
    return behind


def groups(settings: Settings) -> dict[str, tuple[str, list[str]]]:
    """Name shown in /healthz -> (consumer group id, topics it must read). The worker's group
    is the faust app id; its other input topics are found from its commits."""
    return {
        "worker": (settings.topic(STREAMS_APP_ID), [settings.topic(CHECKINS.name)]),
        "sink": (settings.topic("clickhouse-sink"), [settings.topic(t) for t in ROUTES]),
    }


class LagProbe:
    """Measures the groups' lag at most every HEALTH_LAG_INTERVAL_S and remembers it, so health
    probes every few seconds from several places cost the broker one round of requests a while.
    Blocking: call it from a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._last: dict[str, int] | None = None
        self._admin: Any = None
        self._consumer: Any = None

    def current(self) -> dict[str, int] | None:
        """Lag per group name, or None when the broker could not be asked."""
        with self._lock:
            if time.monotonic() - self._at >= self.settings.health_lag_interval_s:
                self._at = time.monotonic()
                try:
                    self._last = self.measure()
                except Exception as exc:  # Kafka down: /healthz names that already.
                    log.debug("consumer lag not measured: %s", exc)
                    self._last = None
                    self.close()
            return self._last

    def _clients(self) -> tuple[Any, Any]:
        from kafka import KafkaAdminClient, KafkaConsumer

        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.settings.kafka_bootstrap.split(","),
                request_timeout_ms=3000,
                api_version=(3, 9),
            )
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap.split(","),
                enable_auto_commit=False,
                # Asking about a topic must never create it.
                allow_auto_create_topics=False,
                request_timeout_ms=3000,
                api_version=(3, 9),
            )
        return self._admin, self._consumer

    def measure(
        self,
        wanted: Mapping[str, tuple[str, list[str]]] | None = None,
        skip: Collection[str] = (),
    ) -> dict[str, int]:
        """Lag per group name now, uncached; raises when the broker cannot be asked. `wanted`:
        name -> (group id, topics it must read), `groups(settings)` by default; `skip`: topics
        left out even where the group committed on them."""
        from kafka import TopicPartition

        admin, consumer = self._clients()
        out: dict[str, int] = {}
        wanted = wanted if wanted is not None else groups(self.settings)
        # One OffsetFetch for both groups (a group that never committed comes back empty).
        fetched = admin.list_group_offsets({group: None for group, _ in wanted.values()})
        for name, (group, expected) in wanted.items():
            offsets = fetched.get(group) or {}
            committed = {
                (tp.topic, tp.partition): int(om.offset)
                for tp, om in offsets.items()
                if om.offset is not None and om.offset >= 0
            }
            topics = (set(expected) | {t for t, _ in committed}) - set(skip)
            parts = [
                TopicPartition(t, p)
                for t in sorted(topics)
                for p in _partitions(consumer, t)
                if not t.endswith("-changelog")
            ]
            if not parts:
                out[name] = 0
                continue
            ends = {
                (tp.topic, tp.partition): int(o) for tp, o in consumer.end_offsets(parts).items()
            }
            begins = {
                (tp.topic, tp.partition): int(o)
                for tp, o in consumer.beginning_offsets(parts).items()
            }
            out[name] = group_lag(committed, ends, begins)
        return out

    def close(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                try:
                    client.close()
                except Exception as exc:
                    log.debug("closing a lag client: %s", exc)
        self._admin = self._consumer = None


def _partitions(consumer: Any, topic: str) -> Iterable[int]:
    return sorted(consumer.partitions_for_topic(topic) or ())


def lagging(lag: Mapping[str, int] | None, threshold: int) -> list[str]:
    """The groups further behind than the threshold, by name."""
    return sorted(name for name, n in (lag or {}).items() if n > threshold)
