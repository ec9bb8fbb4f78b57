"""The layers contract (.importlinter) can fail: run on a tree that breaks every rule once, each
contract is reported broken; on the same tree without the violations, each is kept.

The trees reuse the project's package names, so the real config is checked, not a copy. The
linter runs in a subprocess with the tree as its working directory (lint-imports puts the
working directory first on sys.path, ahead of the editable install of the real packages).
"""

from __future__ import annotations

import ast
import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"

# Every module of the synthetic project and its imports, without any violation. The allowed
# exceptions are exercised: infra builds the app through api.main (which pulls in the routers),
# bench uses the core, api.errors and api.schemas and starts the API through infra.
CLEAN: dict[str, str] = {
    "services/__init__.py": "",
    "services/rules.py": "import pydantic\n",
    "services/reads.py": "from services import rules\n",
    "streams/__init__.py": "",
    "streams/app.py": "import faust\nfrom services import rules\n",
    "api/__init__.py": "",
    "api/errors.py": "import fastapi\n",
    "api/schemas.py": "import pydantic\n",
    "api/pages/__init__.py": "",
    "api/routers/__init__.py": "",
    "api/routers/weekly.py": "from services import reads\nfrom api import errors\n",
    "api/routers/dashboard.py": "from services import reads\n",
    "api/main.py": "from api.routers import dashboard, weekly\n",
    "infra/__init__.py": "",
    "infra/run_local.py": "from api.main import app\nfrom services import rules\n",
    "bench/__init__.py": "",
    "bench/reads.py": "from services import reads\nfrom api import errors, schemas\nimport infra.run_local\n",
    "tests/__init__.py": "",
    "tests/test_x.py": "import api.main\nimport streams.app\n",
}

# One violation per contract, added to the clean tree.
VIOLATIONS: dict[str, tuple[str, str]] = {
    "core-is-independent": ("services/reads.py", "from api import schemas\n"),
    "core-has-no-frameworks": ("services/rules.py", "import faust\n"),
    "streams-not-api": ("streams/app.py", "from api import errors\n"),
    "api-not-streams": ("api/routers/weekly.py", "import streams.app\n"),
    "infra-starts-processes": ("infra/run_local.py", "from api.routers import weekly\n"),
    "routers-independent": ("api/routers/dashboard.py", "from api.routers.weekly import x\n"),
    "bench-uses-core": ("bench/reads.py", "from api.routers.weekly import x\n"),
}


def contract_names() -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    prefix = "importlinter:contract:"
    return {s[len(prefix) :]: parser[s]["name"] for s in parser.sections() if s.startswith(prefix)}


def lint(tree: dict[str, str], where: Path) -> dict[str, str]:
    """Contract name -> KEPT or BROKEN, as lint-imports reports it on `tree`."""
    for rel, text in tree.items():
        path = where / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
            "--no-logo",
            str(CONFIG),
        ],
        cwd=where,
        # Wide enough that no contract's line is wrapped.
        env={**os.environ, "COLUMNS": "1000"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    verdicts = {}
    for line in out.stdout.splitlines():
        for verdict in ("KEPT", "BROKEN"):
            if line.endswith(verdict) or f" {verdict} (" in line:
                verdicts[line.split(f" {verdict}")[0]] = verdict
    assert verdicts, out.stdout + out.stderr
    return verdicts


def test_every_contract_in_the_config_has_a_violation_here() -> None:
    assert set(contract_names()) == set(VIOLATIONS)


def test_the_clean_tree_keeps_every_contract(tmp_path: Path) -> None:
    verdicts = lint(CLEAN, tmp_path)
    assert verdicts == {name: "KEPT" for name in contract_names().values()}


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_one_violation_breaks_its_contract_only(contract: str, tmp_path: Path) -> None:
    rel, line = VIOLATIONS[contract]
    tree = {**CLEAN, rel: CLEAN[rel] + line}
    names = contract_names()
    expected = {name: "KEPT" for name in names.values()}
    expected[names[contract]] = "BROKEN"
    assert lint(tree, tmp_path) == expected


def test_no_test_module_imports_a_conftest() -> None:
    """Helpers shared by tests are plain modules (tests/support/); a conftest holds fixtures and
    hooks, which pytest finds by itself."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n == "conftest" or n.endswith(".conftest") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
