"""Prometheus and Grafana as shipped in infra/ (issue 13, part 5): the scrape config, the alert
rules and the dashboard. Marked `ops_tools` where Debian's promtool runs (the Makefile's
`ops-tools` target installs it for `make test`): those fail, never skip, when it finds an error."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from services import metrics

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "infra" / "prometheus"
GRAFANA = ROOT / "infra" / "grafana"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))


def promtool(*args: str, cwd: Path = PROM) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: `make ops-tools` installs Debian's prometheus package"
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def known_metrics() -> set[str]:
    """Every series name services/metrics.py exposes (counters with _total, histograms with
    _bucket/_sum/_count), and Prometheus' own `up`."""
    names = {"up"}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        for sample_family in value.describe():
            base = sample_family.name
            kind = sample_family.type
            if kind == "counter":
                names |= {f"{base}_total", base}
            elif kind == "histogram":
                names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
            else:
                names.add(base)
    return names


def names_in(expr: str) -> set[str]:
    # Metric names are identifiers not followed by "(" (functions) and not label names or
    # keywords; the project's own all start with volunteer_, and `up` is Prometheus' own.
    return set(re.findall(r"\b(volunteer_[a-z_]+|up)\b(?!\s*\()", expr))


def alerts() -> list[dict[str, Any]]:
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [r for r in group["rules"] if "alert" in r]
    return out


def test_the_operations_rules_cover_what_on_call_needs() -> None:
    names = {a["alert"] for a in alerts()}
    assert {
        "VolunteerSinkLagGrowing",
        "VolunteerWorkerLagGrowing",
        "VolunteerWorkerNotCommitting",
        "VolunteerAgentHolesRepeated",
        "VolunteerDeadLetters",
        "VolunteerSinkInsertsFailing",
        "VolunteerCheckins503",
    } <= names
    for a in alerts():
        assert a["labels"]["severity"] in {"page", "ticket"}, a["alert"]
        assert a["annotations"]["summary"] and a["annotations"]["description"], a["alert"]


def test_every_metric_an_alert_names_exists_in_services_metrics() -> None:
    known = known_metrics()
    assert "volunteer_checkins_total" in known and "volunteer_sink_insert_seconds_bucket" in known
    for a in alerts():
        used = names_in(a["expr"])
        assert used, a["alert"]
        assert used <= known, (a["alert"], used - known)


def test_every_metric_the_dashboard_charts_exists_in_services_metrics() -> None:
    known = known_metrics()
    dash = json.loads((GRAFANA / "dashboards" / "operations.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 8
    for expr in exprs:
        assert names_in(expr) and names_in(expr) <= known, expr
    titles = " ".join(p["title"] for p in dash["panels"])
    for needed in ("Check-in rate", "Refusals by reason", "Lag", "insert latency", "Freshness"):
        assert needed in titles
    # The panels read the provisioned datasource, by its fixed uid.
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = ds["datasources"][0]["uid"]
    assert {p["datasource"]["uid"] for p in dash["panels"]} == {uid}


def test_the_scrape_config_loads_every_rule_file_of_the_folder() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules/*.yml"]
    # A rule file left beside prometheus.yml would never be loaded (test files excepted).
    strays = [
        p.name
        for p in PROM.glob("*.yml")
        if p.name != "prometheus.yml" and not p.name.endswith("_test.yml")
    ]
    assert not strays, f"move {strays} into infra/prometheus/rules/"
    jobs = {j["job_name"] for j in config["scrape_configs"]}
    assert jobs == {"volunteer-api", "volunteer-edge", "volunteer-worker", "volunteer-sink"}


@pytest.mark.ops_tools
def test_promtool_accepts_the_config_and_every_rule_file() -> None:
    r = promtool("check", "config", "prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in r.stdout + r.stderr
    r = promtool("check", "rules", *(str(p) for p in RULE_FILES))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.ops_tools
def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    # Each alert fires when it should and stays quiet otherwise (operations_test.yml).
    for path in PROM.glob("*_test.yml"):
        r = promtool("test", "rules", path.name)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.ops_tools
def test_promtool_fails_on_a_broken_rule(tmp_path: Path) -> None:
    # The check above can fail: the same rules with one expression broken are refused.
    text = (PROM / "rules" / "operations.yml").read_text()
    broken = text.replace(
        "sum by (table) (increase(volunteer_sink_insert_failures_total[5m])) > 0",
        "sum by (table) (increase(volunteer_sink_insert_failures_total[5m]) > 0",
    )
    assert broken != text
    bad = tmp_path / "broken.yml"
    bad.write_text(broken)
    r = promtool("check", "rules", str(bad))
    assert r.returncode != 0
    assert "broken.yml" in r.stdout + r.stderr
