"""Test rules: unmarked tests touch no network and no ClickHouse; marked ones get the real parts.

A test that needs Kafka is marked `kafka` and uses the broker this session starts from the
official jars (free ports, a temporary folder); one that needs ClickHouse is marked
`clickhouse` and uses embedded chDB. The guard below makes an unmarked test that reaches for
either fail loudly, so the split stays honest.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from infra.kafka import Broker

_SERVICE_MARKS = {"kafka", "clickhouse"}


@pytest.fixture(autouse=True)
def _no_services_in_unit_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if _SERVICE_MARKS & {m.name for m in request.node.iter_markers()}:
        yield
        return

    def refuse(*_: object, **__: object) -> None:
        raise RuntimeError(
            f"{request.node.nodeid} is not marked kafka/clickhouse but tried to reach a service"
        )

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    import clickhouse_connect

    monkeypatch.setattr(clickhouse_connect, "get_client", refuse)
    yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One real broker for the whole session (integration and browser tests alike); each test
    module keeps its data apart with its own topic prefix."""
    b = Broker(tmp_path_factory.mktemp("kafka"), free_port(), free_port())
    b.start()
    yield b
    b.stop()
