"""The HTTP API (FastAPI): routers, pages and the process that owns embedded ClickHouse."""
