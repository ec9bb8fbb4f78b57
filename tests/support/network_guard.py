"""The unit-test network guard, a pytest plugin (tests/conftest.py registers it).

A test not marked `kafka` or `clickhouse` must touch no network and no ClickHouse. Refusing the
connection is not enough: code that catches the refusal (a retry loop, a health probe, a
"best effort" publish) would hide it and the test would pass. So every attempt is also recorded,
and the test fails when any was made, caught or not: in its call phase (a failure of the test
itself), or at teardown for attempts made by fixtures.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

SERVICE_MARKS = frozenset({"kafka", "clickhouse"})

_ATTEMPTS = pytest.StashKey[list[str]]()
_REPORTED = pytest.StashKey[int]()


def _message(item: pytest.Item, attempts: list[str]) -> str:
    shown = "\n  ".join(attempts[:10])
    more = f"\n  ... and {len(attempts) - 10} more" if len(attempts) > 10 else ""
    return (
        f"{item.nodeid} is not marked kafka/clickhouse but tried to reach a service "
        f"{len(attempts)} time(s) (failed even where the code caught the refusal):\n  "
        f"{shown}{more}"
    )


@pytest.fixture(autouse=True)
def _no_services_in_unit_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if SERVICE_MARKS & {m.name for m in request.node.iter_markers()}:
        yield
        return
    attempts: list[str] = []
    request.node.stash[_ATTEMPTS] = attempts

    def refuse(what: str, address_at: int | None) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            if address_at is not None and len(args) > address_at:
                where = repr(args[address_at])
            else:
                where = repr(kwargs)
            attempts.append(f"{what}({where})")
            raise RuntimeError(
                f"{request.node.nodeid} is not marked kafka/clickhouse but tried to reach a "
                f"service: {what}({where})"
            )

        return refused

    # socket.socket methods get the socket first; connect_ex is what kafka-python connects with.
    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect", 1))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex", 1))
    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection", 0))
    import clickhouse_connect

    for name in ("get_client", "create_client"):
        monkeypatch.setattr(clickhouse_connect, name, refuse(f"clickhouse_connect.{name}", None))
    yield
    # Attempts the call phase did not report: made by fixtures (setup or teardown).
    unreported = attempts[request.node.stash.get(_REPORTED, 0) :]
    if unreported:
        pytest.fail(_message(request.node, unreported), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    # A test that failed on its own keeps its own failure; the guard's check follows a pass.
    yield
    attempts = item.stash.get(_ATTEMPTS, [])
    if attempts:
        item.stash[_REPORTED] = len(attempts)
        pytest.fail(_message(item, attempts), pytrace=False)
