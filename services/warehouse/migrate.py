"""Applies the numbered migrations that are not yet recorded. `python -m services.warehouse.migrate`."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.settings import InsecureSecrets, Settings, get_settings, require_secrets
from services.warehouse.client import Warehouse, connect
from services.warehouse.cluster import render_all

log = logging.getLogger(__name__)

_NAME = re.compile(r"^m(\d{4})_(\w+)$")


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    statements: list[str]


def discover() -> list[Migration]:
    from services.warehouse import migrations

    found = []
    for info in pkgutil.iter_modules(migrations.__path__):
        m = _NAME.match(info.name)
        if not m:
            continue
        module = importlib.import_module(f"{migrations.__name__}.{info.name}")
        found.append(Migration(int(m.group(1)), m.group(2), list(module.STATEMENTS)))
    found.sort(key=lambda x: x.number)
    numbers = [m.number for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers must run 1..N without gaps, found {numbers}")
    return found


BOOKKEEPING = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        number UInt32,
        name String,
        applied_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree ORDER BY number
"""


def statements(sql: list[str], cluster: str) -> list[str]:
    """The statements to run: as written, or rendered for the cluster (services.warehouse.cluster)."""
    return render_all(sql, cluster) if cluster else sql


def applied(wh: Warehouse, cluster: str = "") -> set[int]:
    for stmt in statements([BOOKKEEPING], cluster):
        wh.command(stmt)
    return {int(r[0]) for r in wh.query("SELECT number FROM schema_migrations FINAL")}


class SchemaOutOfDate(RuntimeError):
    """The database's schema is older than this code expects: the migrate step has not run."""


def expected_version() -> int:
    """The schema version this code needs: the highest numbered migration it ships."""
    found = discover()
    return found[-1].number if found else 0


def current_version(wh: Warehouse) -> int:
    """The highest migration recorded in the database, 0 when none is (read only: a process
    that only checks must not create the bookkeeping table behind the migrate step's back)."""
    exists = wh.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() "
        "AND name = 'schema_migrations'"
    )
    if not exists or not int(exists[0][0]):
        return 0
    rows = wh.query("SELECT max(number) FROM schema_migrations FINAL")
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def check_schema(wh: Warehouse, database: str) -> int:
    """Refuses an older schema (several API processes starting together must not race on DDL:
    migrations run once, in the migrate step, before any API). A newer one is served: a rolling
    deploy migrates first, while the previous code still runs against it."""
    want, have = expected_version(), current_version(wh)
    if have < want:
        raise SchemaOutOfDate(
            f"database {database!r} is at schema version {have}, this code needs {want}: run "
            "the migrate step first (`make migrate`, or `python -m services.warehouse.migrate`; "
            "in docker-compose the one-shot `migrate` service)"
        )
    return have


def migrate(wh: Warehouse, cluster: str = "") -> list[int]:
    done = applied(wh, cluster)
    ran = []
    for mig in discover():
        if mig.number in done:
            continue
        log.info("applying migration %04d_%s", mig.number, mig.name)
        for stmt in statements(mig.statements, cluster):
            wh.command(stmt)
        wh.insert(
            "schema_migrations",
            [(mig.number, mig.name, datetime.now(UTC))],
            ["number", "name", "applied_at"],
        )
        ran.append(mig.number)
    return ran


def run(settings: Settings) -> list[int]:
    """The migrate step: creates the database if needed, applies what is missing, then the
    retention settings as TTLs (services.warehouse.retention)."""
    from services.warehouse import retention

    wh = connect(settings)
    ran = migrate(wh, settings.clickhouse_cluster)
    retention.apply(wh, settings, settings.clickhouse_cluster)
    return ran


def run_in_child(env: Mapping[str, str], timeout_s: float = 300.0) -> None:
    """The migrate step in a process of its own, as `make migrate` runs it: with embedded chDB
    (one process per data folder) whoever starts an API next must not hold the folder open."""
    r = subprocess.run(
        [sys.executable, "-m", "services.warehouse.migrate"],
        cwd=Path(__file__).resolve().parents[2],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"the migrate step failed:\n{r.stdout[-2000:]}{r.stderr[-3000:]}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Settings are validated here too: a contradicting configuration stops the deployment at
    # its first step, before any table is touched.
    settings = get_settings()
    # With a server (docker-compose), the deployment's secrets are refused here, at its first
    # step, before anything serves. Not with embedded chDB: `make run` migrates before it
    # generates its secrets, and the API it starts checks them.
    if not settings.is_embedded_clickhouse:
        try:
            require_secrets(settings)
        except InsecureSecrets as exc:
            raise SystemExit(f"migrate: {exc}") from None
    ran = run(settings)
    print(f"applied {len(ran)} migration(s): {ran}" if ran else "schema is up to date")


if __name__ == "__main__":
    main()
