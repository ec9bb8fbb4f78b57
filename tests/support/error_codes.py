"""Every error code the API can answer, read from the code base itself (api/ and services/),
so a new code without a Chinese message fails `tests/unit/test_error_messages.py`.

Codes are found where errors are made: the first string argument of an error's constructor
(`ApiError`, the registry's `Invalid`/`Conflict`/`Forbidden`, the importer's `FileRejected`,
the lists' `_Refused`, the raw `_json`/`_error` writers), the status-to-code maps (`{404:
"not_found"}` and `{"not_assignee": 403}`) and the default of their `.get`, and the codes that a
function typed `-> tuple[int, str]` returns (the body limits). A code built from a kind
(`f"{kind}_not_found"`) is returned as a pattern with `*` for the variable part.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSTRUCTORS = frozenset(
    {
        "ApiError",
        "RegistryError",
        "Invalid",
        "Conflict",
        "Forbidden",
        "FileRejected",
        "_Refused",
        "Refusal",
        "_json",
        "_error",
        "error_body",
    }
)
CODE = re.compile(r"^[a-z*][a-z0-9_*]*$")


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _code(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "*"
            for v in node.values
        )
    else:
        return None
    return text if CODE.match(text) else None


def _is_status(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Constant) and isinstance(node.value, int) and 400 <= node.value < 600
    )


def codes_in(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in CONSTRUCTORS:
            for arg in node.args:
                if isinstance(arg, ast.JoinedStr) or (
                    isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                ):
                    code = _code(arg)
                    if code:
                        found.add(code)
                    break
        elif isinstance(node, ast.Dict) and node.keys:
            keys = [k for k in node.keys if k is not None]
            if keys and all(_is_status(k) for k in keys):
                found.update(c for c in map(_code, node.values) if c)
            if node.values and all(_is_status(v) for v in node.values):
                found.update(c for c in map(_code, keys) if c)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Dict)
            and len(node.args) == 2
        ):
            code = _code(node.args[1])
            if code:
                found.add(code)
        if (
            isinstance(node, ast.FunctionDef)
            and node.returns is not None
            and ast.unparse(node.returns).replace(" ", "") == "tuple[int,str]"
        ):
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple):
                    code = _code(ret.value.elts[-1])
                    if code:
                        found.add(code)
    return found


def api_error_codes(root: Path = ROOT) -> set[str]:
    found: set[str] = set()
    for package in ("api", "services"):
        for path in sorted((root / package).rglob("*.py")):
            found |= codes_in(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found
