"""ClickHouse access, always through clickhouse-connect: embedded chDB (`chdb://`) or a server (`http://`)."""

from services.warehouse.client import Warehouse, connect

__all__ = ["Warehouse", "connect"]
