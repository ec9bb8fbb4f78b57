"""An accessibility check for the browser tests: axe-core (pinned in package.json, installed by
`npm ci` into node_modules, never fetched from the internet nor served by the app) run inside
the page under test.

The script goes in through DevTools evaluation, not a <script> tag, so the pages' own
Content-Security-Policy (scripts from the app only) stays as it is served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def axe_violations(page: Page, impacts: tuple[str, ...] = SERIOUS) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now (WCAG 2.x A and AA rules and axe's best
    practices), of the given impacts: rule id, impact, help and the offending elements."""
    if not AXE.exists():
        raise AssertionError(f"{AXE} is missing: run `make install` (npm ci)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result: dict[str, Any] = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ["violations"]});
          return {violations: r.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
          }))};
        }"""
    )
    return [v for v in result["violations"] if v["impact"] in impacts]


def assert_no_serious_violations(page: Page) -> None:
    """Fails naming every serious or critical violation and the elements that have it."""
    found = axe_violations(page)
    lines = [
        f"{v['id']} ({v['impact']}): {v['help']} -> " + "; ".join(n["target"] for n in v["nodes"])
        for v in found
    ]
    assert not found, "accessibility violations:\n" + "\n".join(lines)
