"""The sink: Kafka topics into ClickHouse, in batches, idempotently; `python -m services.sink`.

Filter, transform, batch (by size or time), write, then commit, as in snuba's consumers. The
offsets of a batch are committed only after ClickHouse acknowledged its insert; a failed insert
is retried with backoff, never skipped. Each insert carries a deduplication token derived from
the batch's offset ranges, and tables are ReplacingMergeTree on the entity id, so a batch that
is re-delivered after a crash between insert and commit is harmless.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from services.processors import ROUTES, InvalidMessage, Route, process
from services.settings import Settings, get_settings
from services.topics import DEAD_LETTER
from services.warehouse.client import Warehouse, connect

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    rows_written: int = 0
    batches: int = 0
    dead_letters: int = 0
    insert_failures: int = 0
    last_error: str | None = None
    last_flush_at: float | None = None


@dataclass
class _Batch:
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: defaultdict(list))
    routes: dict[str, Route] = field(default_factory=dict)
    dead: list[tuple[bytes | None, bytes | None, str, str]] = field(default_factory=list)
    # partition -> (first offset, next offset to consume)
    ranges: dict[TopicPartition, tuple[int, int]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def size(self) -> int:
        return sum(len(r) for r in self.rows.values()) + len(self.dead)

    def token(self, table: str) -> str:
        spans = ",".join(
            f"{tp.topic}/{tp.partition}:{a}-{b}"
            for tp, (a, b) in sorted(
                self.ranges.items(), key=lambda kv: (kv[0].topic, kv[0].partition)
            )
        )
        return hashlib.sha256(f"{table}|{spans}".encode()).hexdigest()


class Sink:
    def __init__(self, settings: Settings, warehouse: Warehouse) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self.stats = SinkStats()
        self._stop = threading.Event()
        self._prefix = settings.topic_prefix
        self._batch = _Batch()
        self._consumer: KafkaConsumer | None = None
        self._dlq: KafkaProducer | None = None

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _connect(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap.split(","),
            group_id=self.settings.topic("clickhouse-sink"),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.sink_batch_size,
            fetch_max_wait_ms=100,
            api_version=(3, 9),
        )
        sink = self

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                # Write and commit what we hold before another member takes the partitions.
                sink._flush()

            def on_partitions_assigned(self, assigned: Any) -> None:
                pass

        consumer.subscribe(
            topics=[self.settings.topic(name) for name in ROUTES], listener=_Listener()
        )
        return consumer

    def run(self) -> None:
        log.info(
            "sink starting (batch %d rows / %d ms)",
            self.settings.sink_batch_size,
            self.settings.sink_batch_ms,
        )
        while not self.stopping:
            try:
                if self._consumer is None:
                    self._consumer = self._connect()
                self._poll_once(self._consumer)
            except KafkaError as exc:
                self.stats.last_error = f"kafka: {exc}"
                log.warning("sink: Kafka error, reconnecting: %s", exc)
                self._reset_consumer()
                self._stop.wait(1.0)
        if self._consumer is not None:
            try:
                self._flush()
            finally:
                self._consumer.close(autocommit=False)
        if self._dlq is not None:
            self._dlq.close(timeout=2)

    def _reset_consumer(self) -> None:
        # Whatever was buffered but not committed will be fetched again from the committed
        # offsets: dropping it loses nothing.
        self._batch = _Batch()
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception:
                log.debug("closing consumer failed", exc_info=True)
        self._consumer = None

    def _poll_once(self, consumer: KafkaConsumer) -> None:
        remaining_ms = max(
            0, self.settings.sink_batch_ms - int((time.monotonic() - self._batch.started) * 1000)
        )
        polled = consumer.poll(
            timeout_ms=min(remaining_ms, 200) if self._batch.size else 200,
            max_records=max(1, self.settings.sink_batch_size - self._batch.size),
        )
        if not self._batch.size:
            self._batch.started = time.monotonic()
        for tp, messages in polled.items():
            name = tp.topic.removeprefix(self._prefix)
            for m in messages:
                try:
                    route, row = process(name, m.value)
                except InvalidMessage as exc:
                    self._batch.dead.append((m.key, m.value, tp.topic, str(exc)))
                else:
                    self._batch.rows[route.table].append(row)
                    self._batch.routes[route.table] = route
                first, _ = self._batch.ranges.get(tp, (m.offset, m.offset))
                self._batch.ranges[tp] = (first, m.offset + 1)
        full = self._batch.size >= self.settings.sink_batch_size
        due = (time.monotonic() - self._batch.started) * 1000 >= self.settings.sink_batch_ms
        if self._batch.ranges and (full or due):
            self._flush()

    def _flush(self) -> None:
        batch = self._batch
        if not batch.ranges or self._consumer is None:
            return
        for table, rows in batch.rows.items():
            if rows:
                self._insert_until_acknowledged(
                    table, batch.routes[table], rows, batch.token(table)
                )
        if batch.dead:
            self._send_dead_letters(batch.dead)
        offsets = {tp: OffsetAndMetadata(nxt, "", -1) for tp, (_, nxt) in batch.ranges.items()}
        try:
            self._consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group moved on (rebalance) while we were writing: the new owner re-reads from
            # the last commit, and the rows we wrote are deduplicated.
            log.warning("sink: commit refused after rebalance: %s", exc)
        self.stats.rows_written += sum(len(r) for r in batch.rows.values())
        self.stats.batches += 1
        self.stats.last_flush_at = time.time()
        self._batch = _Batch()

    def _insert_until_acknowledged(
        self, table: str, route: Route, rows: list[tuple[Any, ...]], token: str
    ) -> None:
        delay = 0.2
        while True:
            try:
                self.warehouse.insert(table, rows, route.columns, dedup_token=token)
                self.stats.last_error = None
                return
            except Exception as exc:
                # Never skip a batch: the offsets stay uncommitted until ClickHouse took it.
                self.stats.insert_failures += 1
                self.stats.last_error = f"clickhouse: {exc}"
                log.warning(
                    "sink: insert into %s failed (%s); retrying in %.1fs", table, exc, delay
                )
                if self._stop.wait(delay):
                    raise SinkStopped from exc
                delay = min(delay * 2, 5.0)

    def _send_dead_letters(self, dead: list[tuple[bytes | None, bytes | None, str, str]]) -> None:
        if self._dlq is None:
            self._dlq = KafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap.split(","),
                acks="all",
                api_version=(3, 9),
            )
        futures = [
            self._dlq.send(
                self.settings.topic(DEAD_LETTER.name),
                key=key,
                value=value,
                headers=[("reason", reason.encode()[:4000]), ("source_topic", topic.encode())],
            )
            for key, value, topic, reason in dead
        ]
        for f in futures:
            f.get(timeout=30)
        self.stats.dead_letters += len(dead)
        log.warning("sink: %d invalid message(s) sent to the dead-letter topic", len(dead))


class SinkStopped(Exception):
    """Raised out of a retry loop when the process is stopping; nothing is committed."""


def run_in_thread(settings: Settings) -> tuple[Sink, threading.Thread]:
    """The embedded mode: the API process runs the sink beside its handlers (chDB is in-process)."""
    sink = Sink(settings, connect(settings))

    def target() -> None:
        try:
            sink.run()
        except SinkStopped:
            log.info("sink stopped with an unwritten batch; it will be re-read from Kafka")

    thread = threading.Thread(target=target, name="clickhouse-sink", daemon=True)
    thread.start()
    return sink, thread


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = get_settings()
    sink = Sink(settings, connect(settings))
    signal.signal(signal.SIGTERM, lambda *_: sink.stop())
    signal.signal(signal.SIGINT, lambda *_: sink.stop())
    try:
        sink.run()
    except SinkStopped:
        log.info("sink stopped with an unwritten batch; it will be re-read from Kafka")


if __name__ == "__main__":
    main()
