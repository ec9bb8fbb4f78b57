"""docker-compose.yml as deployed (issue 13, part 6): valid against the Compose Specification
(Debian's `docker-compose config`, marked `ops_tools`: the Makefile's `ops-tools` target
installs it), every long-running service health-checked, the migrate step first, data on named
volumes, Prometheus and Grafana wired to infra/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP = ("api", "edge", "worker", "sink")
# Required by the file (`${VAR:?}`): production secrets have no default.
ENV = {"ADMIN_TOKEN": "a", "SECRET_KEY": "b", "GRAFANA_ADMIN_PASSWORD": "c"}


def services() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return dict(doc["services"])


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is missing: `make ops-tools` installs Debian's docker-compose"
    return subprocess.run(
        [exe, "-f", str(path), "--project-directory", str(ROOT), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **ENV},
    )


def conditions(svc: dict[str, Any]) -> dict[str, str]:
    deps = svc.get("depends_on", {})
    assert isinstance(deps, dict), "depends_on must carry conditions"
    return {name: dep["condition"] for name, dep in deps.items()}


def test_every_long_running_service_has_a_health_check() -> None:
    for name, svc in services().items():
        if name == "migrate":
            continue
        check = svc.get("healthcheck")
        assert check and check["test"], name
        assert {"interval", "timeout", "retries"} <= set(check), name


def test_migrate_runs_first_once_and_everything_app_waits_for_it() -> None:
    s = services()
    mig = s["migrate"]
    assert mig["restart"] == "no"
    assert "services.warehouse.migrate" in " ".join(mig["command"])
    assert conditions(mig) == {"kafka": "service_healthy", "clickhouse": "service_healthy"}
    for name in APP:
        assert conditions(s[name]) == {
            "migrate": "service_completed_successfully",
            "kafka": "service_healthy",
            "clickhouse": "service_healthy",
        }, name


def test_the_start_order_has_no_cycle_and_ends_with_the_dashboards() -> None:
    s = services()
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        assert name not in path, f"cycle {(*path, name)}"
        if name in order:
            return
        for dep in conditions(s[name]):
            visit(dep, (*path, name))
        order.append(name)

    for name in s:
        visit(name)
    pos = order.index
    assert pos("kafka") < pos("migrate") and pos("clickhouse") < pos("migrate")
    assert all(pos("migrate") < pos(a) for a in APP)
    assert all(pos(a) < pos("prometheus") for a in APP)
    assert pos("prometheus") < pos("grafana")
    assert set(conditions(s["prometheus"]).values()) == {"service_healthy"}


def test_data_lives_on_named_volumes() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    s = doc["services"]
    volumes = set(doc["volumes"])
    for name, mount in (
        ("kafka", "/var/lib/kafka/data"),
        ("clickhouse", "/var/lib/clickhouse"),
        ("prometheus", "/prometheus"),
        ("grafana", "/var/lib/grafana"),
    ):
        named = [v.split(":")[0] for v in s[name]["volumes"] if v.split(":")[1] == mount]
        assert named and named[0] in volumes, name


def test_prometheus_and_grafana_are_wired_to_the_files_in_infra() -> None:
    s = services()
    prom = s["prometheus"]
    assert "./infra/prometheus:/etc/prometheus:ro" in prom["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    graf = s["grafana"]["volumes"]
    assert "./infra/grafana/provisioning:/etc/grafana/provisioning:ro" in graf
    assert "./infra/grafana/dashboards:/etc/grafana/dashboards:ro" in graf
    provider = yaml.safe_load(
        (ROOT / "infra/grafana/provisioning/dashboards/volunteer.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    # What Prometheus scrapes is served: the worker and the sink listen beyond loopback.
    for name in ("worker", "sink", "edge"):
        assert s[name]["environment"]["METRICS_HOST"] == "0.0.0.0"
    assert s["sink"]["environment"]["SINK_METRICS_PORT"] == "9102"


def test_the_deployment_settings_pass_the_start_up_validation() -> None:
    # Every app process validates its settings at start (migrate first); the file's own values
    # must not contradict each other.
    from services.settings import Settings

    def resolve(value: str) -> str:
        # ${VAR:-default} -> default; ${VAR:?message} (a required secret) -> a stand-in.
        value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
        return re.sub(r"\$\{\w+:\?[^}]*\}", "set-by-the-operator", value)

    for name in ("migrate", *APP):
        env = {k.lower(): resolve(str(v)) for k, v in services()[name]["environment"].items()}
        settings = Settings(**env)
        assert not settings.is_embedded_clickhouse and settings.sink_mode == "external"


def test_the_scaled_shape_several_edges_workers_and_sinks_behind_one_port() -> None:
    # Issue 16: the deployment shows the scaled shape by default.
    s = services()
    for name in ("worker", "sink"):
        assert s[name]["deploy"]["replicas"] >= 2, name
    # One public port, held by the edge container; the reads process is reached through it.
    published = {name: svc.get("ports", []) for name, svc in s.items() if name in APP}
    assert published == {"api": [], "edge": ["8000:8000"], "worker": [], "sink": []}
    edge = s["edge"]
    command = " ".join(edge["command"])
    found = re.search(r"python -m api\.edge --processes \$\{CHECKIN_EDGES:-(\d+)\}", command)
    assert found and int(found.group(1)) >= 2, command
    assert edge["environment"]["EDGE_UPSTREAM"] == "http://api:8000"
    # The reads process trusts the edges' X-Forwarded-For (the activation limiter's key).
    assert s["api"]["environment"]["TRUSTED_PROXIES"]
    # Prometheus scrapes every edge process on its own port (EDGE_METRICS_PORT + index).
    base = int(edge["environment"]["EDGE_METRICS_PORT"])
    prom = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "volunteer-edge"]
    ports = sorted(c["port"] for c in job["dns_sd_configs"] if c["names"] == ["edge"])
    assert ports == [base + k for k in range(int(found.group(1)))]


@pytest.mark.ops_tools
def test_docker_compose_config_accepts_the_file() -> None:
    r = compose_config(COMPOSE)
    assert r.returncode == 0, r.stderr
    resolved = yaml.safe_load(r.stdout)
    assert set(resolved["services"]) == {
        "kafka",
        "clickhouse",
        "migrate",
        "api",
        "edge",
        "worker",
        "sink",
        "prometheus",
        "grafana",
    }


@pytest.mark.ops_tools
def test_docker_compose_config_refuses_a_file_off_the_specification(tmp_path: Path) -> None:
    broken = COMPOSE.read_text().replace("service_completed_successfully", "service_finished", 1)
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(broken)
    r = compose_config(bad)
    assert r.returncode != 0
    assert "service_finished" in r.stderr
