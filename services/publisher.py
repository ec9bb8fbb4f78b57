"""Publishing events to Kafka: acks=all, bounded waits, two producers for two calling styles.

A publish either is acknowledged by the broker (then the caller may answer 202) or raises
`PublishUnavailable` within `publish_timeout_s`. A record that timed out may still be delivered
later by the producer's retries; that is harmless because event ids are deterministic and every
consumer drops duplicates.

Two producers, one per calling style:
- `send_sync` / `send_many_sync` (threads: the registry, revocations, scripts) use kafka-python.
- `send` (the event loop: check-ins) uses aiokafka once `start()` ran on that loop (the API's
  lifespan): it appends to a batch and waits for the acknowledgement on the loop itself, with no
  sender thread, no cross-thread wake-ups and C-built record batches. Measured on the check-in
  path it costs less than half the CPU per record of kafka-python driven from asyncio (~100 µs
  vs ~250-300 µs, bench/findings.md section 2). Without `start()` on the running loop (a
  script, a test client without lifespan), `send` falls back to kafka-python.
Both hash keys with the Java client's murmur2 over the sorted partitions, so a key lands in the
same partition whichever producer sent it (per-member order on `checkins` depends on it).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Collection, Sequence
from typing import Any

# aiokafka ships no type information (no py.typed).
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError as AioKafkaError  # type: ignore[import-untyped]
from aiokafka.errors import MessageSizeTooLargeError as AioMessageSizeTooLarge
from aiokafka.errors import RecordTooLargeError as AioRecordTooLarge
from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError
from kafka.partitioner.default import murmur2

from services.events import Event
from services.settings import Settings
from services.topics import TopicSpec

log = logging.getLogger(__name__)


class PublishUnavailable(RuntimeError):
    """Kafka did not acknowledge in time: the caller answers 503 and the client retries."""


class PublishRefused(ValueError):
    """Kafka will never take this record (it is larger than a message may be): retrying cannot
    help, so the caller answers 413, never a retryable 503."""


_TOO_LARGE = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    AioMessageSizeTooLarge,
    AioRecordTooLarge,
)


def _failed(exc: BaseException) -> Exception:
    """What a Kafka error means to the caller: refused for good, or unavailable for now."""
    if isinstance(exc, _TOO_LARGE):
        return PublishRefused(
            "the record is larger than the event log accepts for one message (about 1 MB); "
            "send less at once"
        )
    return PublishUnavailable(str(exc))


# murmur2 is pure Python (~10 µs a key); keys (member ids) repeat, so their hashes are kept.
_HASHES: dict[bytes, int] = {}
_HASHES_MAX = 200_000


def _key_hash(key: bytes) -> int:
    h = _HASHES.get(key)
    if h is None:
        if len(_HASHES) >= _HASHES_MAX:
            _HASHES.clear()
        h = _HASHES[key] = int(murmur2(key)) & 0x7FFFFFFF
    return h


def _partition(key: bytes | None, all_partitions: Collection[int], available: Sequence[int]) -> int:
    """kafka-python's DefaultPartitioner, for aiokafka: murmur2 over the *sorted* partitions."""
    ordered = sorted(all_partitions)
    if key is None:
        return random.choice(available or ordered)
    return ordered[_key_hash(key) % len(ordered)]


class Publisher:
    # After a failed start of the asyncio producer (Kafka down), sends fail fast for this long
    # before the next attempt, so a burst of check-ins does not open a connection each.
    START_RETRY_S = 1.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._aio: AIOKafkaProducer | None = None
        self._aio_loop: asyncio.AbstractEventLoop | None = None
        self._aio_lock: asyncio.Lock | None = None
        self._aio_retry_at = 0.0
        self._failing_since: float | None = None
        timeout_ms = int(settings.publish_timeout_s * 1000)
        self._producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap.split(","),
            # Naming the protocol version skips the blocking bootstrap probe, so a process
            # starts (and answers 503) even while the broker is down.
            api_version=(3, 9),
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            max_block_ms=timeout_ms,
            request_timeout_ms=max(timeout_ms, 1000),
            delivery_timeout_ms=120_000,
            retry_backoff_ms=100,
        )

    def topic(self, spec: TopicSpec) -> str:
        return self.settings.topic(spec.name)

    def send_sync(self, spec: TopicSpec, key: str, event: Event) -> None:
        try:
            self._producer.send(self.topic(spec), key=key.encode(), value=event.to_bytes()).get(
                timeout=self.settings.publish_timeout_s
            )
        except KafkaError as exc:
            raise _failed(exc) from exc

    def send_many_sync(self, items: list[tuple[TopicSpec, str, Event]]) -> None:
        """Sends every record first, then waits for all acknowledgements: a batch of thousands
        (a spreadsheet import) costs one round of waits, not one per record. The wait grows
        with the batch (2 ms a record) on top of the usual publish timeout."""
        if not items:
            return
        budget = self.settings.publish_timeout_s + 0.002 * len(items)
        try:
            futures = [
                self._producer.send(self.topic(spec), key=key.encode(), value=event.to_bytes())
                for spec, key, event in items
            ]
            self._producer.flush(timeout=budget)
            for f in futures:
                f.get(timeout=0.1)
        except KafkaError as exc:
            raise _failed(exc) from exc

    async def start(self) -> None:
        """Binds the asyncio producer to the running loop and connects it. Never fails: with
        Kafka down it connects on a later `send` (which answers PublishUnavailable until then)."""
        self._aio_loop = asyncio.get_running_loop()
        self._aio_lock = asyncio.Lock()
        try:
            await self._aio_producer(self.settings.publish_timeout_s)
        except PublishUnavailable as exc:
            log.warning("Kafka not reachable at start; will retry on the first publish: %s", exc)

    async def _aio_producer(self, timeout_s: float) -> AIOKafkaProducer:
        if self._aio is not None:
            return self._aio
        assert self._aio_lock is not None
        async with self._aio_lock:  # one connection attempt at a time
            if self._aio is not None:
                return self._aio
            if time.monotonic() < self._aio_retry_at:
                raise PublishUnavailable("Kafka is not reachable")
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap.split(","),
                acks="all",
                # Not idempotent: after a broker restart aiokafka 0.14's idempotent producer
                # kept failing with OutOfOrderSequenceNumber on every partition and never
                # recovered (drill c refused every check-in until the API restarted; aiokafka
                # issue #1017). Idempotence only guards against duplicates from retries, which
                # are harmless here (deterministic event ids, deduplicating consumers), and
                # aiokafka keeps one request in flight per broker, so retries keep the order.
                enable_idempotence=False,
                # A little longer than the threaded producer's: at peak, batches of a few
                # records instead of one cost the broker and this process far fewer requests;
                # a scan waits a few ms more for its 202.
                linger_ms=5,
                request_timeout_ms=max(int(self.settings.publish_timeout_s * 1000), 1000),
                retry_backoff_ms=100,
                partitioner=_partition,
            )
            try:
                await asyncio.wait_for(producer.start(), timeout_s)
            except (AioKafkaError, OSError, TimeoutError) as exc:
                self._aio_retry_at = time.monotonic() + self.START_RETRY_S
                await _stop_quietly(producer, 1.0)
                raise PublishUnavailable(f"cannot connect to Kafka: {exc!r}") from exc
            self._aio = producer
            return producer

    def failing_for(self) -> float:
        """Seconds since the asynchronous sends (check-ins) last stopped succeeding: 0 while
        the latest one succeeded. A port that answers is not enough for `/healthz`: in drill c
        the broker was up and every send failed (docs/drills.md)."""
        since = self._failing_since
        return 0.0 if since is None else time.monotonic() - since

    async def send(self, spec: TopicSpec, key: str, event: Event) -> None:
        """Waits for the broker's acknowledgement without blocking the event loop."""
        try:
            await self._send(spec, key, event)
        except PublishUnavailable:
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            raise
        self._failing_since = None

    async def _send(self, spec: TopicSpec, key: str, event: Event) -> None:
        if self._aio_loop is not asyncio.get_running_loop():
            await self._send_threaded(spec, key, event)
            return
        timeout_s = self.settings.publish_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                producer = await self._aio_producer(timeout_s)
                topic, key_bytes = self.topic(spec), key.encode()
                # The partition is chosen here when the topic's partitions are known: the same
                # as the partitioner's choice, without its per-call lists and sets.
                known = producer.client.cluster.partitions_for_topic(topic)
                delivered = await producer.send(
                    topic,
                    event.to_bytes(),
                    key=key_bytes,
                    partition=_partition(key_bytes, known, ()) if known else None,
                )
                # Shielded: a timeout must not cancel the delivery future, which the producer
                # settles itself (a late delivery is a harmless duplicate, see above).
                await asyncio.shield(delivered)
        except TimeoutError as exc:
            raise PublishUnavailable("Kafka did not acknowledge in time") from exc
        except AioKafkaError as exc:
            raise _failed(exc) from exc

    async def _send_threaded(self, spec: TopicSpec, key: str, event: Event) -> None:
        """kafka-python from a loop the asyncio producer is not bound to."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def ok(meta: Any) -> None:
            loop.call_soon_threadsafe(_settle, done, None, meta)

        def err(exc: BaseException) -> None:
            loop.call_soon_threadsafe(_settle, done, exc, None)

        topic = self.topic(spec)
        try:
            if self._metadata_known(topic):
                # The usual case: metadata is known, so send() only appends to the batch.
                future = self._producer.send(topic, key=key.encode(), value=event.to_bytes())
            else:
                # send() blocks up to max_block_ms while metadata is missing (the broker down,
                # or the first send to a topic): keep that off the event loop.
                future = await asyncio.to_thread(
                    self._producer.send, topic, key=key.encode(), value=event.to_bytes()
                )
        except KafkaError as exc:
            raise _failed(exc) from exc
        future.add_callback(ok)
        future.add_errback(err)
        try:
            await asyncio.wait_for(done, timeout=self.settings.publish_timeout_s)
        except TimeoutError as exc:
            raise PublishUnavailable("Kafka did not acknowledge in time") from exc
        except KafkaError as exc:
            raise _failed(exc) from exc

    def _metadata_known(self, topic: str) -> bool:
        # kafka-python's cluster metadata, read without triggering a (blocking) refresh.
        return bool(self._producer._metadata.partitions_for_topic(topic))

    def flush(self, timeout_s: float = 5.0) -> None:
        self._producer.flush(timeout=timeout_s)

    async def aclose(self) -> None:
        """Stops the asyncio producer (on its loop), delivering what it holds if it can."""
        producer, self._aio, self._aio_loop = self._aio, None, None
        if producer is not None:
            await _stop_quietly(producer, 5.0)

    def close(self) -> None:
        try:
            self._producer.close(timeout=2)
        except Exception:  # closing during shutdown: nothing left to save
            log.debug("producer close failed", exc_info=True)


async def _stop_quietly(producer: AIOKafkaProducer, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(producer.stop(), timeout_s)
    except Exception:  # shutting down or never connected: nothing left to save
        log.debug("aiokafka producer stop failed", exc_info=True)


def _settle(fut: asyncio.Future[Any], exc: BaseException | None, value: Any) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)
