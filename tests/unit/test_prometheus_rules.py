"""The alert rules under infra/prometheus: they parse, name metrics this code exports, and (with
promtool on PATH) pass `promtool check rules` and their own rule unit tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import services.metrics  # noqa: F401  (registers the metrics the rules name)

RULES = Path(__file__).resolve().parents[2] / "infra" / "prometheus"


def _rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((RULES / "rules" / "reconciliation.yml").read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def _exported() -> set[str]:
    names: set[str] = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)
        names.update(s.name for s in metric.samples)
    # A labelled metric without children has no samples yet: its family name stands for them.
    names.update(f"{n}_total" for n in list(names))
    return names


def test_unaccounted_scans_alert_when_they_stay_above_zero_for_minutes() -> None:
    rule = _rules()["VolunteerScansUnaccounted"]
    assert re.fullmatch(
        r'max by \(partition\) \(volunteer_unaccounted_scans\{partition!="-1"\}\) > 0',
        rule["expr"],
    ), rule["expr"]
    minutes = int(re.fullmatch(r"(\d+)m", rule["for"]).group(1))  # type: ignore[union-attr]
    assert 5 <= minutes <= 30
    assert "{{ $labels.partition }}" in rule["annotations"]["summary"]


def test_every_metric_the_rules_name_is_exported() -> None:
    exported = _exported()
    for name, rule in _rules().items():
        named = set(re.findall(r"\bvolunteer_[a-z_]+", rule["expr"]))
        assert named, name
        assert named <= exported, (name, named - exported)


def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (the rules are parsed and checked above)")
    for args in (
        ["check", "rules", "rules/reconciliation.yml"],
        ["test", "rules", "rules_test.yml"],
    ):
        out = subprocess.run(
            [promtool, *args], cwd=RULES, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stdout + out.stderr
