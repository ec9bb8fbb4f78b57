"""Publishing events to Kafka with kafka-python: acks=all, bounded waits, an asyncio bridge.

A publish either is acknowledged by the broker (then the caller may answer 202) or raises
`PublishUnavailable` within `publish_timeout_s`. A record that timed out may still be delivered
later by the producer's retries; that is harmless because event ids are deterministic and every
consumer drops duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from services.events import Event
from services.settings import Settings
from services.topics import TopicSpec

log = logging.getLogger(__name__)


class PublishUnavailable(RuntimeError):
    """Kafka did not acknowledge in time: the caller answers 503 and the client retries."""


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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
            raise PublishUnavailable(str(exc)) from exc

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
            raise PublishUnavailable(str(exc)) from exc

    async def send(self, spec: TopicSpec, key: str, event: Event) -> None:
        """Waits for the broker's acknowledgement without blocking the event loop."""
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
            raise PublishUnavailable(str(exc)) from exc
        future.add_callback(ok)
        future.add_errback(err)
        try:
            await asyncio.wait_for(done, timeout=self.settings.publish_timeout_s)
        except TimeoutError as exc:
            raise PublishUnavailable("Kafka did not acknowledge in time") from exc
        except KafkaError as exc:
            raise PublishUnavailable(str(exc)) from exc

    def _metadata_known(self, topic: str) -> bool:
        # kafka-python's cluster metadata, read without triggering a (blocking) refresh.
        return bool(self._producer._metadata.partitions_for_topic(topic))

    def flush(self, timeout_s: float = 5.0) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        try:
            self._producer.close(timeout=2)
        except Exception:  # closing during shutdown: nothing left to save
            log.debug("producer close failed", exc_info=True)


def _settle(fut: asyncio.Future[Any], exc: BaseException | None, value: Any) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)
