"""One way to reach ClickHouse for every process: `connect(settings)`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from services.settings import Settings


class Warehouse:
    """A clickhouse-connect client bound to the project's database.

    chDB runs the engine in this process: every client on a path shares it, and calls on one
    handle are serialised by clickhouse-connect. The server client is pooled HTTP.
    """

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.database = database

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.client.query(sql, parameters=parameters).result_rows]

    def query_dicts(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        res = self.client.query(sql, parameters=parameters)
        return [dict(zip(res.column_names, row, strict=True)) for row in res.result_rows]

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return self.client.command(sql, parameters=parameters)

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        dedup_token: str | None = None,
    ) -> None:
        settings: dict[str, Any] = {}
        if dedup_token is not None:
            # With non_replicated_deduplication_window on the table, a re-sent batch with the
            # same token is dropped by ClickHouse (chDB and server alike).
            settings["insert_deduplication_token"] = dedup_token
        self.client.insert(
            table, rows, column_names=list(columns), database=self.database, settings=settings
        )

    def ping(self) -> bool:
        try:
            return bool(self.client.command("SELECT 1") == 1)
        except Exception:
            return False

    def close(self) -> None:
        self.client.close()


def cluster_settings(cluster: str) -> dict[str, Any]:
    """Session settings on a cluster (services.warehouse.cluster): a subquery or join over a
    Distributed table inside a query over another runs once and is sent to the shards (GLOBAL),
    not refused; an insert into a Distributed table returns once the shards have it, so the
    sink commits offsets only for rows the replicas hold (and a re-sent batch meets its
    deduplication token there)."""
    if not cluster:
        return {}
    return {"distributed_product_mode": "global", "distributed_foreground_insert": 1}


def connect(settings: Settings, create_database: bool = True) -> Warehouse:
    dsn = settings.clickhouse_dsn
    if settings.is_embedded_clickhouse:
        path = dsn.removeprefix("chdb://")
        if path.startswith("/"):
            Path(path).mkdir(parents=True, exist_ok=True)
        client = clickhouse_connect.get_client(dsn=dsn)
    else:
        client = clickhouse_connect.get_client(
            dsn=dsn,
            connect_timeout=5,
            send_receive_timeout=30,
            settings=cluster_settings(settings.clickhouse_cluster),
        )
    if create_database:
        on = f" ON CLUSTER '{settings.clickhouse_cluster}'" if settings.clickhouse_cluster else ""
        client.command(f"CREATE DATABASE IF NOT EXISTS {settings.clickhouse_database}{on}")
    client.database = settings.clickhouse_database
    return Warehouse(client, settings.clickhouse_database)
