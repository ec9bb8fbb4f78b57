"""A secret that is never the built-in one (issue 17): every start-up (API, worker, sink, and
migrate against a server) refuses a missing, built-in or short SECRET_KEY or ADMIN_TOKEN, naming
what to set, unless ALLOW_DEV_SECRETS is set (tests/conftest.py sets it for the suite; here it is
turned off explicitly). No network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from services.settings import (
    DEV_ADMIN_TOKEN,
    DEV_SECRET_KEY,
    InsecureSecrets,
    Settings,
    require_secrets,
    secret_problems,
)

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * 24 + "-random-enough-key"
GOOD_ADMIN = "a" * 24 + "-random-enough-admin"


def strict(**kw: Any) -> Settings:
    base: dict[str, Any] = {
        "allow_dev_secrets": False,
        "secret_key": GOOD_KEY,
        "admin_token": GOOD_ADMIN,
    }
    return Settings(**(base | kw))


def test_long_distinct_secrets_are_accepted() -> None:
    assert secret_problems(strict()) == []
    require_secrets(strict())


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("secret_key", DEV_SECRET_KEY, "SECRET_KEY is the built-in development value"),
        ("admin_token", DEV_ADMIN_TOKEN, "ADMIN_TOKEN is the built-in development value"),
        ("secret_key", "", "SECRET_KEY is not set"),
        ("admin_token", "", "ADMIN_TOKEN is not set"),
        ("secret_key", "x" * 31, "SECRET_KEY is shorter than 32 bytes"),
        # 11 characters, 33 bytes: the rule is about bytes of key material.
        ("admin_token", "口令口令口令口令口令口", None),
        ("secret_key", GOOD_ADMIN, "SECRET_KEY and ADMIN_TOKEN are the same"),
    ],
)
def test_each_weak_secret_is_refused_naming_what_to_set(
    field: str, value: str, why: str | None
) -> None:
    problems = secret_problems(strict(**{field: value}))
    if why is None:
        assert problems == []
        return
    assert len(problems) == 1 and problems[0].startswith(why), problems
    with pytest.raises(InsecureSecrets) as info:
        require_secrets(strict(**{field: value}))
    msg = str(info.value)
    assert why in msg and "ALLOW_DEV_SECRETS=1" in msg
    if "same" not in why:
        assert "at least 32 bytes" in msg
    # The refusal is logged: it names the variable, never the value it was given.
    if value and len(value) > 8:
        assert value not in msg


def test_the_defaults_are_refused_without_the_switch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # What a process started with no secrets configured gets (none in the environment or `.env`).
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    problems = secret_problems(Settings(allow_dev_secrets=False))
    assert [p.split(":")[0] for p in problems] == [
        "SECRET_KEY is the built-in development value (it is in the source code)",
        "ADMIN_TOKEN is the built-in development value (it is in the source code)",
    ]


def test_the_development_switch_accepts_them_only_with_embedded_clickhouse() -> None:
    assert secret_problems(Settings(allow_dev_secrets=True)) == []
    server = Settings(allow_dev_secrets=True, clickhouse_dsn="http://default:x@ch:8123")
    assert secret_problems(server) == [
        "ALLOW_DEV_SECRETS (for tests and local development) must not be set with a ClickHouse "
        "server DSN (a production-looking deployment): unset it"
    ]


def test_the_api_refuses_before_building_anything() -> None:
    with pytest.raises(InsecureSecrets, match="SECRET_KEY is the built-in"):
        create_app(Settings(allow_dev_secrets=False))
    assert create_app(strict()).title


def _start(module: list[str], extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ADMIN_TOKEN")}
    env.pop("ALLOW_DEV_SECRETS", None)
    # Ports nobody listens on: a process that got past the check would fail on them instead.
    env |= {"KAFKA_BOOTSTRAP": "127.0.0.1:9", "WORKER_WEB_PORT": "9"} | extra
    return subprocess.run(
        [sys.executable, "-m", *module],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "module",
    [["streams", "worker"], ["services.sink"], ["services.warehouse.migrate"], ["api"]],
)
def test_every_process_refuses_the_built_in_secrets(module: list[str], tmp_path: Path) -> None:
    # Migrate checks only against a server (make run migrates before it has generated its
    # secrets); nothing listens on that address, and the check comes first.
    extra = {"DATA_DIR": str(tmp_path)}
    if module[0] == "services.warehouse.migrate":
        extra["CLICKHOUSE_DSN"] = "http://default:x@127.0.0.1:9"
    r = _start(module, extra)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "refusing to start with these secrets" in out, out[-3000:]
    assert "SECRET_KEY is the built-in development value" in out
    assert "set SECRET_KEY to a random value of at least 32 bytes" in out
