"""The real stack for integration tests: one Kafka broker and one chDB engine per test session,
a fresh topic prefix and database per module, a faust worker process and the API in-process.
The helpers (`Stack`, `Worker`, `run_async`) live in tests/support/stack.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.kafka import Broker, create_topics
from services.settings import Settings
from tests.support.net import free_port
from tests.support.stack import Stack, Worker


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # chDB allows one engine path per process: every module shares it, each with its own database.
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest,
    broker: Broker,
    chdb_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    # A module may set STACK_ENV: settings, by environment name, for its API and its worker;
    # and run its tests once per variant, by parametrizing this fixture (indirect=True) with
    # more of them (e.g. {"STATE_STORE": "rocksdb"}).
    stack_env: dict[str, str] = {
        **getattr(request.module, "STACK_ENV", {}),
        **getattr(request, "param", {}),
    }
    name = f"t{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp(name)
    settings = Settings(
        data_dir=data_dir,
        kafka_port=broker.port,
        kafka_controller_port=broker.controller_port,
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"{name}.",
        clickhouse_dsn=f"chdb://{chdb_path}",
        clickhouse_database=name,
        worker_web_port=free_port(),
        sink_batch_ms=200,
        secret_key="test-secret-" + uuid.uuid4().hex,
        admin_token="test-admin-" + uuid.uuid4().hex,
        # Settings both the API and the worker take from the environment (e.g. a faster clock);
        # the reminder job decides at wall-clock moments, so tests run it by hand.
        **{"reminders_interval_s": 0, **{k.lower(): v for k, v in stack_env.items()}},
    )
    create_topics(broker.bootstrap, settings.topic_prefix)
    # The migrate step, as `make run` and docker-compose run it: the API only checks the schema.
    from services.warehouse.migrate import run as migrate_schema

    migrate_schema(settings)
    worker = Worker(settings, data_dir / "worker.log", stack_env)
    worker.start()
    app = create_app(settings)
    with TestClient(app) as client:
        yield Stack(settings, client, worker, broker)
    worker.stop()
