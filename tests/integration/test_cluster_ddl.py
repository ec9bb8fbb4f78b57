"""The migrations rendered for a ClickHouse cluster (services.warehouse.cluster): every statement
parses (ClickHouse's own parser, in chDB), the shape is the one documented, and the rendered DDL
kept in docs/cluster-ddl.sql is what the code renders today."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from services.settings import Settings
from services.warehouse import cluster
from services.warehouse.client import Warehouse, connect
from services.warehouse.migrate import BOOKKEEPING, discover

pytestmark = pytest.mark.clickhouse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wh(chdb_path: Path) -> Iterator[Warehouse]:
    settings = Settings(
        clickhouse_dsn=f"chdb://{chdb_path}", clickhouse_database=f"k{uuid.uuid4().hex[:8]}"
    )
    yield connect(settings)


def rendered() -> list[str]:
    out = cluster.render(BOOKKEEPING, "volunteer")
    for mig in discover():
        out += cluster.render_all(mig.statements, "volunteer")
    return out


def test_every_rendered_statement_parses(wh: Warehouse) -> None:
    statements = rendered()
    assert len(statements) > 60
    for s in statements:
        formatted = str(wh.query("SELECT formatQuery(%(q)s)", {"q": s})[0][0])
        if not s.startswith("INSERT"):
            assert "ON CLUSTER volunteer" in formatted, s


def test_each_table_is_replicated_and_read_through_a_distributed_table() -> None:
    statements = rendered()
    creates = [s for s in statements if s.startswith("CREATE TABLE")]
    local = {re.search(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", s)[1]: s for s in creates}  # type: ignore[index]
    for name, s in local.items():
        if name.endswith("_local"):
            assert "ENGINE = Replicated" in s and "'/clickhouse/tables/{uuid}/{shard}'" in s
            assert "non_replicated" not in s
            dist = local[name.removesuffix("_local")]
            assert (
                f"AS {name} ENGINE = Distributed('volunteer', currentDatabase(), '{name}'" in dist
            )
    sessions = local["sessions"]
    assert sessions.endswith("cityHash64((member_id, session_id)))")
    assert "replicated_deduplication_window = 10000" in local["sessions_local"]
    # A column reaches both tables; an index only the local one.
    assert (
        "ALTER TABLE checkins ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS kafka_offset Int64 DEFAULT -1"
        in statements
    )
    assert not any(s.startswith("ALTER TABLE checkins ON") and "INDEX" in s for s in statements)
    # Views run shard by shard, from local table to local table.
    assert any(
        s.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS unit_sessions_mv ON CLUSTER")
        and " TO unit_sessions_local " in s
        and s.split(" FROM ")[-1].startswith("sessions_local")
        for s in statements
    )
    assert (
        "EXCHANGE TABLES member_weeks_local AND member_weeks_next_local ON CLUSTER 'volunteer'"
        in statements
    )


def test_an_unknown_kind_of_statement_is_refused() -> None:
    with pytest.raises(cluster.CannotRender):
        cluster.render("RENAME TABLE a TO b", "volunteer")
    with pytest.raises(cluster.CannotRender):
        cluster.render("CREATE TABLE t (a String) ENGINE = MergeTree PRIMARY KEY a", "volunteer")


def test_the_documented_ddl_is_what_the_code_renders() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cluster.main(["volunteer"]) == 0
    assert (ROOT / "docs" / "cluster-ddl.sql").read_text() == out.getvalue(), (
        "regenerate: python -m services.warehouse.cluster volunteer > docs/cluster-ddl.sql"
    )


def test_a_cluster_needs_a_server() -> None:
    with pytest.raises(ValueError, match="CLICKHOUSE_CLUSTER"):
        Settings(clickhouse_dsn="chdb:///tmp/x", clickhouse_cluster="volunteer")
    s = Settings(clickhouse_dsn="http://ch:8123", clickhouse_cluster="volunteer")
    assert s.clickhouse_cluster == "volunteer"
