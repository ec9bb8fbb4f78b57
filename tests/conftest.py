"""Test rules: unmarked tests touch no network and no ClickHouse; marked ones get the real parts.

A test that needs Kafka is marked `kafka` and uses the broker this session starts from the
official jars (free ports, a temporary folder); one that needs ClickHouse is marked
`clickhouse` and uses embedded chDB. The network guard (tests/support/network_guard.py) fails an
unmarked test that reaches for either, even when the code under test caught the refusal, so the
split stays honest. Shared helpers are plain modules in tests/support/; conftest files hold
fixtures and hooks only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Before the support modules are imported, so their asserts explain themselves like a test's.
pytest.register_assert_rewrite("tests.support")

from infra.kafka import Broker  # noqa: E402
from tests.support.net import free_port  # noqa: E402

pytest_plugins = ["tests.support.network_guard", "pytester"]


def pytest_configure(config: pytest.Config) -> None:
    # The one place the suite accepts the built-in development secrets (a start-up refuses them
    # otherwise: services.settings.secret_problems): apps built from `Settings()` and every
    # child process (they inherit this environment) may use them. The stacks still sign with
    # random keys of their own; the refusal itself is tested with this switch turned off.
    os.environ["ALLOW_DEV_SECRETS"] = "1"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One real broker for the whole session (integration and browser tests alike); each test
    module keeps its data apart with its own topic prefix."""
    b = Broker(tmp_path_factory.mktemp("kafka"), free_port(), free_port())
    b.start()
    yield b
    b.stop()
