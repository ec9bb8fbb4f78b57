"""The asyncio producer partitions keys exactly as kafka-python does (services.publisher)."""

from __future__ import annotations

import os

from kafka.partitioner.default import DefaultPartitioner

from services.publisher import _partition


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
