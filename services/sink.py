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
import os
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

from services import metrics, reconcile, reminder_job, slot_weeks_job
from services.logging import configure as configure_logging
from services.processors import ROUTES, InvalidMessage, Route, at_position, process
from services.settings import InsecureSecrets, Settings, get_settings, require_secrets
from services.topics import DEAD_LETTER
from services.warehouse.client import Warehouse, connect
from services.warehouse.migrate import check_schema

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
    def __init__(
        self, settings: Settings, warehouse: Warehouse, group_id: str | None = None
    ) -> None:
        self.settings = settings
        self.warehouse = warehouse
        # A replay into a fresh database reads every topic from offset 0 with its own group.
        self.group_id = group_id or settings.topic("clickhouse-sink")
        self.stats = SinkStats()
        self._stop = threading.Event()
        self._prefix = settings.topic_prefix
        self._batch = _Batch()
        self._consumer: KafkaConsumer | None = None
        self._dlq: KafkaProducer | None = None
        # Operations: acknowledged inserts (for the fault hooks), lag bookkeeping.
        self._inserts = 0
        self._down_until: float | None = None
        self._committed: dict[TopicPartition, int] = {}
        self._lag_at = 0.0

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _connect(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap.split(","),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.sink_batch_size,
            # Let the broker gather 64 KiB (or wait 100 ms) per fetch. With kafka-python's
            # default of 1 byte every fetch returned a handful of records, so at 1,000 check-ins/s
            # the sink's threads spent ~19% of a core in fetch round trips, inside the API's
            # process in the embedded mode, where they compete with the serving loop for the
            # GIL (bench/findings.md, section 2: p50 at 1,000/s 22 ms -> 10 ms). Freshness pays
            # at most the 100 ms wait, well inside the 500 ms batch time.
            fetch_max_wait_ms=100,
            fetch_min_bytes=64 * 1024,
            # A sink that died without leaving the group holds its partitions until the session
            # times out (kafka-python's default is 45 s): keep it short, like the worker's, so a
            # restarted sink resumes within seconds (drills b and f).
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
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
                    if route.positioned:
                        row = at_position(row, m.partition, m.offset)
                    self._batch.rows[route.table].append(row)
                    self._batch.routes[route.table] = route
                first, _ = self._batch.ranges.get(tp, (m.offset, m.offset))
                self._batch.ranges[tp] = (first, m.offset + 1)
        full = self._batch.size >= self.settings.sink_batch_size
        due = (time.monotonic() - self._batch.started) * 1000 >= self.settings.sink_batch_ms
        if self._batch.ranges and (full or due):
            self._flush()
        self._update_lag(consumer)

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
            self._commit(self._consumer, offsets)
        except CommitFailedError as exc:
            # The group moved on (rebalance) while we were writing: the new owner re-reads from
            # the last commit, and the rows we wrote are deduplicated.
            log.warning("sink: commit refused after rebalance: %s", exc)
        self.stats.rows_written += sum(len(r) for r in batch.rows.values())
        self.stats.batches += 1
        self.stats.last_flush_at = time.time()
        self._batch = _Batch()

    def _commit(self, consumer: KafkaConsumer, offsets: dict[TopicPartition, Any]) -> None:
        # Only reached once every insert of the batch was acknowledged (the seam a test uses to
        # kill the sink between the insert and the commit).
        consumer.commit(offsets)
        self._committed.update({tp: om.offset for tp, om in offsets.items()})

    def _update_lag(self, consumer: KafkaConsumer) -> None:
        """Publishes volunteer_sink_lag every SINK_LAG_INTERVAL_S: one end-offsets request for
        the assigned partitions; positions and our own commits are local."""
        now = time.monotonic()
        if now - self._lag_at < self.settings.sink_lag_interval_s:
            return
        self._lag_at = now
        try:
            assigned = list(consumer.assignment())
            if not assigned:
                return
            ends = consumer.end_offsets(assigned)
            done = {
                (tp.topic, tp.partition): self._committed.get(tp, consumer.position(tp))
                for tp in assigned
            }
            ends_by = {(tp.topic, tp.partition): int(end) for tp, end in ends.items()}
        except KafkaError as exc:
            log.debug("sink: lag not measured: %s", exc)
            return
        for topic, lag in metrics.lag_by_topic(ends_by, done).items():
            metrics.SINK_LAG.labels(topic=topic.removeprefix(self._prefix)).set(lag)

    def run_until_caught_up(self, timeout_s: float = 300.0) -> None:
        """Reads every routed topic up to its end offsets as of the assignment, writes, commits,
        and returns: the replay of the log into a fresh database (see services.replay)."""
        deadline = time.monotonic() + timeout_s
        consumer = self._consumer = self._connect()
        targets: dict[TopicPartition, int] | None = None
        try:
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"sink did not catch up within {timeout_s:.0f}s")
                self._poll_once(consumer)
                assignment = consumer.assignment()
                if not assignment:
                    continue
                if targets is None:
                    targets = consumer.end_offsets(list(assignment))
                if self._batch.ranges:
                    continue
                if all(consumer.position(tp) >= end for tp, end in targets.items()):
                    return
        finally:
            self._consumer = None
            consumer.close(autocommit=False)
            if self._dlq is not None:
                self._dlq.close(timeout=2)
                self._dlq = None

    def _insert_until_acknowledged(
        self, table: str, route: Route, rows: list[tuple[Any, ...]], token: str
    ) -> None:
        delay = 0.2
        while True:
            try:
                self._fault_inserts_down()
                t0 = time.monotonic()
                self.warehouse.insert(table, rows, route.columns, dedup_token=token)
                metrics.SINK_INSERT_SECONDS.observe(time.monotonic() - t0)
                metrics.SINK_BATCH_ROWS.observe(len(rows))
                metrics.SINK_ROWS.labels(table=table).inc(len(rows))
                self.stats.last_error = None
                self._inserts += 1
                self._fault_exit_after_insert()
                return
            except Exception as exc:
                # Never skip a batch: the offsets stay uncommitted until ClickHouse took it.
                self.stats.insert_failures += 1
                metrics.SINK_INSERT_FAILURES.labels(table=table).inc()
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
        for _, _, topic, _ in dead:
            metrics.DEAD_LETTERS.labels(source="sink", topic=topic.removeprefix(self._prefix)).inc()
        log.warning("sink: %d invalid message(s) sent to the dead-letter topic", len(dead))

    # ---- FAULT INJECTION for the drills (bench/drills); inert unless the settings set them ----

    def _fault_exit_after_insert(self) -> None:
        n = self.settings.sink_fault_after_insert
        if n and self._inserts == n:
            log.error("FAULT INJECTION: exiting after insert %d, before the commit", n)
            logging.shutdown()
            os._exit(137)

    def _fault_inserts_down(self) -> None:
        down_s = self.settings.sink_fault_inserts_down_s
        if not down_s:
            return
        if (
            self._down_until is None
            and self._inserts >= self.settings.sink_fault_inserts_down_after
        ):
            self._down_until = time.monotonic() + down_s
            log.error("FAULT INJECTION: ClickHouse inserts fail for %.0f s", down_s)
        if self._down_until is not None and time.monotonic() < self._down_until:
            raise ConnectionError("ClickHouse unavailable (fault injection)")


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
    # The guard, the reminders and the slot tallies run where the sink runs (they read the warehouse), and stop
    # with it.
    reconcile.start(settings, connect(settings, create_database=False), sink._stop)
    reminder_job.start(settings, connect(settings, create_database=False), sink._stop)
    slot_weeks_job.start(settings, connect(settings, create_database=False), sink._stop)
    return sink, thread


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format)
    try:
        require_secrets(settings)
    except InsecureSecrets as exc:
        raise SystemExit(f"sink: {exc}") from None
    if settings.sink_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.sink_metrics_port, addr=settings.metrics_host)
        log.info(
            "sink metrics on http://%s:%d/metrics",
            settings.metrics_host,
            settings.sink_metrics_port,
        )
    warehouse = connect(settings)
    # Like the API: the migrate step owns the schema; an older one is refused, not written to.
    check_schema(warehouse, settings.clickhouse_database)
    sink = Sink(settings, warehouse)
    signal.signal(signal.SIGTERM, lambda *_: sink.stop())
    signal.signal(signal.SIGINT, lambda *_: sink.stop())
    reconcile.start(settings, connect(settings, create_database=False), sink._stop)
    reminder_job.start(settings, connect(settings, create_database=False), sink._stop)
    slot_weeks_job.start(settings, connect(settings, create_database=False), sink._stop)
    try:
        sink.run()
    except SinkStopped:
        log.info("sink stopped with an unwritten batch; it will be re-read from Kafka")


if __name__ == "__main__":
    main()
