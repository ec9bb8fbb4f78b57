"""The one place that reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_SECRET_KEY = "dev-secret-key-change-me-in-production-0000"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Where everything local lives: chDB data, the broker's storage, logs.
    data_dir: Path = Path("data")

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The address printed on QR posters: what a phone opens after scanning.
    public_url: str = ""

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_bootstrap: str = ""
    # Prefix on every topic and consumer group, so several deployments (or test runs) can share
    # a cluster without reading each other's data.
    topic_prefix: str = ""
    # A publish waits this long for acks=all before the API answers 503; the contract says a
    # check-in with Kafka down fails within 2 s.
    publish_timeout_s: float = 1.5

    clickhouse_dsn: str = ""
    clickhouse_database: str = "volunteer"

    admin_token: str = DEV_ADMIN_TOKEN
    # Signs station QR tokens and bearer tokens. Rotating it: add the new key under a new
    # version and keep the old ones for verification (see services.tokens).
    secret_key: str = DEV_SECRET_KEY
    station_key_version: int = 1
    token_ttl_s: int = 30 * 24 * 3600

    # How far in the past a queued offline scan may lie, and the clock skew tolerated ahead.
    max_scan_age_h: float = 72.0
    max_clock_skew_s: float = 120.0

    # The sink's batch bounds: whichever comes first.
    sink_batch_size: int = 5000
    sink_batch_ms: int = 500
    # "embedded": the API process runs the sink (chDB allows one process per data folder).
    # "external": the sink runs as its own command (server DSN, scaled out).
    sink_mode: str = Field(default="", description="embedded | external; default by DSN")

    # Faust worker
    worker_web_port: int = 6066

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        if not self.kafka_bootstrap:
            self.kafka_bootstrap = f"127.0.0.1:{self.kafka_port}"
        if not self.public_url:
            self.public_url = f"http://127.0.0.1:{self.api_port}"
        self.public_url = self.public_url.rstrip("/")
        if not self.clickhouse_dsn:
            self.clickhouse_dsn = f"chdb://{self.data_dir.resolve() / 'clickhouse'}"
        if not self.sink_mode:
            self.sink_mode = "embedded" if self.is_embedded_clickhouse else "external"
        if self.sink_mode not in ("embedded", "external"):
            raise ValueError("SINK_MODE must be 'embedded' or 'external'")
        return self

    @property
    def is_embedded_clickhouse(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb:")

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
