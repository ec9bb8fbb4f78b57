"""The contract clients can trust (issue 17): schemathesis over real HTTP against the live
service's own OpenAPI document, as an admin and as a member, in every phase (examples, coverage,
fuzzing, stateful). It fails on any 5xx, any answer outside its documented schema or media type,
and any status the operation does not document (`api.openapi.errors` and `complete` document
them; a route added later is covered here once merged).

The API runs as `make run` serves it: uvicorn in a process of its own (infra.stack), its own
chDB folder and topics on the session's broker, migrated first. No faust worker: the contract
is the API's; the worker only derives sessions from the log.

Bounded for two loaded cores: a fixed seed, few examples per operation, no shrinking; the two
runs go side by side. Real ids of a small county (one of each) are offered for the path
parameters, so generated requests reach the routes' logic instead of stopping at 404.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra import stack as infra_stack
from infra.kafka import Broker, create_topics
from services.settings import Settings
from services.warehouse.migrate import run_in_child
from tests.support.net import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

SEED = 17
MAX_EXAMPLES = 2
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "response_schema_conformance",
        "content_type_conformance",
    )
)


@dataclass
class LiveApi:
    settings: Settings
    base_url: str
    ids: dict[str, str]
    member_token: str
    log: Path

    @property
    def admin_token(self) -> str:
        return self.settings.admin_token


def _seed(http: httpx.Client, admin: dict[str, str]) -> tuple[dict[str, str], str]:
    def create(path: str, body: dict[str, object]) -> str:
        r = http.post(path, json=body, headers=admin)
        assert r.status_code == 201, (path, r.status_code, r.text)
        return str(r.json()["id"])

    tag = uuid.uuid4().hex[:4]
    unit = create("/v1/units", {"name": f"县财政局{tag}"})
    community = create("/v1/communities", {"name": f"城关社区{tag}"})
    grid = create("/v1/grids", {"community_id": community, "name": "第一网格", "level": 4})
    station = create(
        "/v1/stations",
        {"community_id": community, "name": "城关党群服务站", "kind": "service_station"},
    )
    member = create(
        "/v1/members",
        {"name": "张伟", "unit_id": unit, "community_id": community, "grid_id": grid},
    )
    r = http.post("/v1/auth/tokens", json={"role": "member", "subject_id": member}, headers=admin)
    assert r.status_code == 201, r.text
    ids = {
        "unit_id": unit,
        "community_id": community,
        "grid_id": grid,
        "station_id": station,
        "member_id": member,
    }
    return ids, str(r.json()["token"])


@pytest.fixture(scope="module")
def live_api(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    name = f"c{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp(name)
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        api_port=port,
        public_url=f"http://127.0.0.1:{port}",
        kafka_port=broker.port,
        kafka_controller_port=broker.controller_port,
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"{name}.",
        clickhouse_dsn=f"chdb://{data_dir / 'clickhouse'}",
        clickhouse_database=name,
        worker_web_port=free_port(),
        sink_batch_ms=200,
        secret_key="contract-secret-" + uuid.uuid4().hex,
        admin_token="contract-admin-" + uuid.uuid4().hex,
    )
    create_topics(broker.bootstrap, settings.topic_prefix)
    env = infra_stack.child_env(settings, {"PUBLIC_URL": settings.public_url})
    run_in_child(env)
    log = data_dir / "api.log"
    api = infra_stack.start_api(infra_stack.api_proc(port, env, log), port, timeout_s=120)
    try:
        with httpx.Client(base_url=settings.public_url, timeout=30) as http:
            ids, member_token = _seed(http, {"Authorization": f"Bearer {settings.admin_token}"})
        yield LiveApi(settings, settings.public_url, ids, member_token, log)
    finally:
        api.stop()


def _config(path: Path, ids: dict[str, str], coverage_mode: str) -> Path:
    lines = ["[parameters]"]
    lines += [f'"path.{name}" = "{value}"' for name, value in ids.items()]
    # The coverage phase would also send every method a path does not route (405 from the
    # framework, not a contract of ours) and repeated query parameters.
    lines += ["[phases.coverage]", "unexpected-methods = []"]
    lines += ["generate-duplicate-query-parameters = false"]
    lines += ["[phases.coverage.generation]", f'mode = "{coverage_mode}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _schemathesis(live: LiveApi, token: str, config: Path, out: Path) -> subprocess.Popen[str]:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is missing: it is pinned in pyproject.toml's dev extras"
    argv = [
        st,
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{live.base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--no-shrink",
        # One thread: hypothesis parses lambdas' source with `ast`, which Python 3.11 does not
        # do safely from several threads at once ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--warnings",
        "off",
        "--report",
        "junit",
        "--report-junit-path",
        str(out / f"{config.stem}.xml"),
    ]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=config.parent
    )


def _failures(output: str) -> str:
    """The failures section, trimmed: what to fix, without a page of progress bars."""
    start = output.find("FAILURES")
    return output[start if start >= 0 else -6000 :][:12_000]


def test_the_live_service_answers_only_what_its_document_says(
    live_api: LiveApi, tmp_path: Path
) -> None:
    # The coverage phase is most of the run. Its invalid requests are refused by validation
    # before any role is looked at, so they are sent once, as the member; the admin sends its
    # valid ones, which reach every route's logic. Fuzzing sends both kinds as both roles.
    t0 = time.monotonic()
    runs = {
        role: _schemathesis(
            live_api, token, _config(tmp_path / f"{role}.toml", live_api.ids, mode), tmp_path
        )
        for role, token, mode in (
            ("admin", live_api.admin_token, "positive"),
            ("member", live_api.member_token, "all"),
        )
    }
    outputs = {}
    for role, proc in runs.items():
        out, _ = proc.communicate(timeout=900)
        outputs[role] = (proc.returncode, out)
    elapsed = time.monotonic() - t0
    print(f"schemathesis, admin and member side by side: {elapsed:.0f} s")
    for role, (_, out) in outputs.items():
        summary = [
            ln
            for ln in out.splitlines()
            if re.match(r"^ *(\S+ +\S+ .*\(in [\d.]+s\)|\d+ generated)", ln)
        ]
        print(role, *summary, sep="\n  ")
    for role, (code, out) in outputs.items():
        # A run that could not load the document or reach the API is a failure too (exit 1 is
        # failures found; anything else is an error of the run itself).
        assert "Loaded specification" in out, f"{role}: {out[-3000:]}"
        assert "API Operations" in out and "Tested:" in out, f"{role}: {out[-3000:]}"
        assert code == 0, f"schemathesis as {role} (exit {code}):\n{_failures(out)}"
    # The service never answered 5xx to anything, also not to what the checks let pass.
    assert "unhandled error" not in live_api.log.read_text(errors="replace")
