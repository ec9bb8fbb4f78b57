"""`python -m bench.chq SQL...`: runs queries against the settings' ClickHouse (chDB folder) in a
short-lived process and prints one JSON list of result rows per query (chDB allows one process
per folder, so the bench itself never opens it while a stack process holds it)."""

from __future__ import annotations

import json
import sys

from services.settings import get_settings
from services.warehouse.client import connect


def main(argv: list[str] | None = None) -> int:
    wh = connect(get_settings())
    out = [[list(r) for r in wh.query(sql)] for sql in (argv or sys.argv[1:])]
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
