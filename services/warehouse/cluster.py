"""The migrations, rendered for a ClickHouse cluster (CLICKHOUSE_CLUSTER names it).

The numbered migrations are written once, for one server (and embedded chDB). On a cluster each
table becomes two: `<name>_local`, a Replicated*MergeTree on every replica of every shard
(created `ON CLUSTER`), and `<name>`, a `Distributed` table over them, which is what the code
reads and writes, so no query changes. Rows are sharded by a hash of the table's sorting key:
rows a ReplacingMergeTree must collapse share that key, so they meet on one shard and `FINAL`
stays correct shard by shard. Materialized views run on each shard, from one local table to
another. A data backfill (`INSERT ... SELECT`) reads and writes the distributed tables, so rows
are re-sharded as they are written.

Insert idempotency holds across replicas: a Replicated table deduplicates an insert's block by
its `insert_deduplication_token` in Keeper (`replicated_deduplication_window`, set from the
single-server `non_replicated_deduplication_window`), whichever replica receives it; the sink's
inserts go through the Distributed table in the foreground (`distributed_foreground_insert`, see
`services.warehouse.client`), so a re-sent batch splits into the same per-shard blocks with the
same token, and an acknowledged insert is on the shards, not in a local spool, before the sink
commits its offsets.

`python -m services.warehouse.cluster NAME` prints every migration rendered for cluster NAME;
`docs/cluster-ddl.sql` is that output for the cluster `volunteer`, kept in step by a test.
"""

from __future__ import annotations

import re
import sys

ENGINE_PATH = "/clickhouse/tables/{uuid}/{shard}"

_WS = re.compile(r"\s+")
_CREATE = re.compile(
    r"^CREATE TABLE (?P<ine>IF NOT EXISTS )?(?P<name>\w+) "
    r"(?:\((?P<body>.*)\)|AS (?P<like>\w+)) "
    r"ENGINE = (?P<engine>\w*MergeTree)(?:\((?P<args>[^)]*)\))?(?P<rest>.*)$"
)
_ORDER_BY = re.compile(r"ORDER BY (?P<key>.+?)(?= PARTITION BY | PRIMARY KEY | TTL | SETTINGS |$)")
_ALTER = re.compile(r"^ALTER TABLE (?P<name>\w+) (?P<action>.*)$")
_VIEW = re.compile(
    r"^CREATE MATERIALIZED VIEW (?P<ine>IF NOT EXISTS )?(?P<name>\w+) TO (?P<target>\w+) "
    r"AS (?P<select>SELECT .* FROM )(?P<source>\w+)(?P<rest>.*)$"
)
_DROP = re.compile(r"^DROP (?P<what>TABLE|VIEW) (?P<ie>IF EXISTS )?(?P<name>\w+)$")
_EXCHANGE = re.compile(r"^EXCHANGE TABLES (?P<a>\w+) AND (?P<b>\w+)$")
# Column changes apply to the Distributed table too (its columns mirror the local one's);
# indexes, TTLs and settings are the local table's alone.
_COLUMN_ACTION = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN ")


class CannotRender(ValueError):
    """A statement of a kind the cluster rendering does not know: extend it before landing."""


def local(name: str) -> str:
    return f"{name}_local"


def _one_line(statement: str) -> str:
    return _WS.sub(" ", statement).strip().rstrip(";")


def _replicated(engine: str, args: str | None) -> str:
    # The table's UUID (the same on every replica of an ON CLUSTER create), not its name, in the
    # Keeper path: a table renamed or exchanged (m0010) keeps a path no new table will take.
    path = f"'{ENGINE_PATH}', '{{replica}}'"
    return f"Replicated{engine}({path}{', ' + args if args else ''})"


def _settings(rest: str) -> str:
    return rest.replace("non_replicated_deduplication_window", "replicated_deduplication_window")


def render(statement: str, cluster: str) -> list[str]:
    """One single-server statement as the statements that do it on `cluster`."""
    s = _one_line(statement)
    on = f"ON CLUSTER '{cluster}'"
    if m := _CREATE.match(s):
        name, ine = m["name"], m["ine"] or ""
        order = _ORDER_BY.search(m["rest"])
        if order is None:
            raise CannotRender(f"no ORDER BY to shard by: {s[:120]}")
        shape = f"({m['body']})" if m["body"] is not None else f"AS {local(m['like'])}"
        engine = _replicated(m["engine"], m["args"])
        return [
            f"CREATE TABLE {ine}{local(name)} {on} {shape} ENGINE = {engine}{_settings(m['rest'])}",
            f"CREATE TABLE {ine}{name} {on} AS {local(name)} ENGINE = Distributed('{cluster}', "
            f"currentDatabase(), '{local(name)}', cityHash64({order['key']}))",
        ]
    if m := _ALTER.match(s):
        out = [f"ALTER TABLE {local(m['name'])} {on} {m['action']}"]
        if _COLUMN_ACTION.match(m["action"]):
            out.append(f"ALTER TABLE {m['name']} {on} {m['action']}")
        return out
    if m := _VIEW.match(s):
        return [
            f"CREATE MATERIALIZED VIEW {m['ine'] or ''}{m['name']} {on} TO {local(m['target'])} "
            f"AS {m['select']}{local(m['source'])}{m['rest']}"
        ]
    if m := _DROP.match(s):
        if m["what"] == "VIEW":
            return [f"DROP VIEW {m['ie'] or ''}{m['name']} {on} SYNC"]
        return [
            f"DROP TABLE {m['ie'] or ''}{m['name']} {on} SYNC",
            f"DROP TABLE {m['ie'] or ''}{local(m['name'])} {on} SYNC",
        ]
    if m := _EXCHANGE.match(s):
        # The Distributed tables name their local tables: swapping those swaps what they read.
        return [f"EXCHANGE TABLES {local(m['a'])} AND {local(m['b'])} {on}"]
    if s.startswith("INSERT INTO "):
        return [s]
    raise CannotRender(f"a statement the cluster rendering does not know: {s[:120]}")


def render_all(statements: list[str], cluster: str) -> list[str]:
    return [out for s in statements for out in render(s, cluster)]


def main(argv: list[str] | None = None) -> int:
    from services.warehouse.migrate import BOOKKEEPING, discover

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not re.fullmatch(r"\w+", args[0]):
        print("usage: python -m services.warehouse.cluster CLUSTER_NAME", file=sys.stderr)
        return 2
    cluster = args[0]
    print(f"-- Every migration rendered for the ClickHouse cluster '{cluster}'")
    print("-- (python -m services.warehouse.cluster; services/warehouse/cluster.py).\n")
    print("-- the migrate step's bookkeeping")
    for s in render(BOOKKEEPING, cluster):
        print(s + ";")
    for mig in discover():
        print(f"\n-- m{mig.number:04d}_{mig.name}")
        for s in render_all(mig.statements, cluster):
            print(s + ";")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
