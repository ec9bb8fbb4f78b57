"""The asyncio producer partitions keys exactly as kafka-python does, and the publisher tells
/healthz since when its sends have been failing (services.publisher)."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from kafka.partitioner.default import DefaultPartitioner

from services.events import Event
from services.publisher import Publisher, PublishUnavailable, _partition
from services.topics import CHECKINS, TopicSpec


class _Cluster:
    def __init__(self, n: int) -> None:
        self.n = n

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))


def test_a_key_lands_in_the_partition_kafka_python_would_choose() -> None:
    # Per-member order on `checkins` relies on every producer hashing a key the same way.
    kp = DefaultPartitioner()
    for n in (1, 3, 6, 12):
        cluster = _Cluster(n)
        for _ in range(500):
            key = f"mem_{os.urandom(8).hex()}".encode()
            expected = kp.partition("t", key, key, None, None, cluster)
            # Whatever order the partitions come in, and again from the hash cache.
            shuffled = sorted(range(n), key=lambda p: (p * 7919) % 13)
            assert _partition(key, shuffled, []) == expected
            assert _partition(key, set(range(n)), []) == expected


def test_a_record_without_key_goes_to_an_available_partition() -> None:
    assert _partition(None, [0, 1, 2], [2]) == 2


def test_health_sees_sends_that_keep_failing_and_forgets_them_on_a_success() -> None:
    # The broker's port may answer while every send fails (drill c): the publisher remembers
    # since when its sends have failed, and the first success clears it.
    class _Flaky(Publisher):
        def __init__(self) -> None:  # no producers: only the bookkeeping is under test
            self._failing_since = None
            self.fail = True

        async def _send(self, spec: TopicSpec, key: str, event: Event) -> None:
            if self.fail:
                raise PublishUnavailable("refused")

    async def scenario() -> None:
        p = _Flaky()
        assert p.failing_for() == 0.0
        for _ in range(2):
            with pytest.raises(PublishUnavailable):
                await p.send(CHECKINS, "k", None)  # type: ignore[arg-type]
        first = p.failing_for()
        assert first > 0.0
        await asyncio.sleep(0.02)
        assert p.failing_for() > first  # counted from the first failure, not the latest
        p.fail = False
        await p.send(CHECKINS, "k", None)  # type: ignore[arg-type]
        assert p.failing_for() == 0.0

    # In a thread of its own: an earlier test in the session may leave a loop running here.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()
