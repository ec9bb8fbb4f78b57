"""Safe start-up (issue 13, part 2): migrations run in the migrate step only; an API process
refuses to serve a schema older than its code, with a message that says what to run."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from services.settings import Settings
from services.warehouse import migrate as migrate_module
from services.warehouse.client import connect

pytestmark = [pytest.mark.clickhouse]


def _settings(chdb_path: Path) -> Settings:
    return Settings(
        clickhouse_dsn=f"chdb://{chdb_path}",
        clickhouse_database=f"s{uuid.uuid4().hex[:8]}",
        # Never reached: the schema check comes before any Kafka client.
        kafka_bootstrap="127.0.0.1:9",
    )


def test_the_api_refuses_an_unmigrated_database_and_names_the_migrate_step(
    chdb_path: Path,
) -> None:
    settings = _settings(chdb_path)
    with pytest.raises(migrate_module.SchemaOutOfDate) as info, TestClient(create_app(settings)):
        pass
    msg = str(info.value)
    want = migrate_module.expected_version()
    assert f"is at schema version 0, this code needs {want}" in msg
    assert "make migrate" in msg and "`migrate` service" in msg
    # Checking created nothing: the bookkeeping table is the migrate step's alone.
    wh = connect(settings)
    assert migrate_module.current_version(wh) == 0
    assert not wh.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND name = 'schema_migrations'"
    )


def test_after_the_migrate_step_the_schema_passes_and_an_older_one_is_refused(
    chdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(chdb_path)
    ran = migrate_module.run(settings)
    want = migrate_module.expected_version()
    assert ran == list(range(1, want + 1))
    wh = connect(settings)
    assert migrate_module.check_schema(wh, settings.clickhouse_database) == want
    # Running it again is harmless (docker-compose runs it on every `up`).
    assert migrate_module.run(settings) == []
    # A newer code (one more migration) against this database: refused until migrated.
    monkeypatch.setattr(migrate_module, "expected_version", lambda: want + 1)
    with pytest.raises(migrate_module.SchemaOutOfDate, match=f"version {want}, this code needs"):
        migrate_module.check_schema(wh, settings.clickhouse_database)
