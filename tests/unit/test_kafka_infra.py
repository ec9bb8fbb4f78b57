from __future__ import annotations

from infra.kafka import _kafka_uuid


def test_cluster_ids_never_look_like_options() -> None:
    ids = {_kafka_uuid() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
