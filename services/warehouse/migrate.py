"""Applies the numbered migrations that are not yet recorded. `python -m services.warehouse.migrate`."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from services.settings import get_settings
from services.warehouse.client import Warehouse, connect

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


def applied(wh: Warehouse) -> set[int]:
    wh.command(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            number UInt32,
            name String,
            applied_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree ORDER BY number
        """
    )
    return {int(r[0]) for r in wh.query("SELECT number FROM schema_migrations FINAL")}


def migrate(wh: Warehouse) -> list[int]:
    done = applied(wh)
    ran = []
    for mig in discover():
        if mig.number in done:
            continue
        log.info("applying migration %04d_%s", mig.number, mig.name)
        for stmt in mig.statements:
            wh.command(stmt)
        wh.insert(
            "schema_migrations",
            [(mig.number, mig.name, datetime.now(UTC))],
            ["number", "name", "applied_at"],
        )
        ran.append(mig.number)
    return ran


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    wh = connect(get_settings())
    ran = migrate(wh)
    print(f"applied {len(ran)} migration(s): {ran}" if ran else "schema is up to date")


if __name__ == "__main__":
    main()
