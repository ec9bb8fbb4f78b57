"""Pure helpers for the benchmarks: percentiles, ratios, the table. No I/O, unit tested."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks (numpy's
    default); NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must lie in [0, 100], got {q}")
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def ratio(measured: float, baseline: float) -> float:
    """measured / baseline; NaN when the baseline is zero or missing (nothing to compare to)."""
    if not baseline or math.isnan(baseline) or math.isnan(measured):
        return math.nan
    return measured / baseline


def fmt(x: float | int | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, int):
        return f"{x:,}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


@dataclass(frozen=True)
class Row:
    """One line of the results table: a figure, its baseline, and the goal it answers to."""

    benchmark: str
    measured: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None  # None: no goal, or not measurable here
    note: str = ""


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "**missed**")


def table(rows: Sequence[Row]) -> str:
    """A GitHub-flavoured Markdown table (also readable as plain text on a terminal)."""
    head = ["benchmark", "measured", "baseline", "ratio", "goal", "verdict", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.benchmark, r.measured, r.baseline, r.ratio, r.goal, verdict(r.met), r.note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def replace_section(text: str, heading: str, body: str) -> str:
    """Replaces the body of the Markdown section `heading` (up to the next heading of the same
    or a higher level) with `body`; appends the section when it is missing."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.split("\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == heading.strip())
    except StopIteration:
        return text.rstrip("\n") + f"\n\n{heading}\n\n{body.strip()}\n"
    end = len(lines)
    for j in range(start + 1, len(lines)):
        s = lines[j]
        if s.startswith("#"):
            lvl = len(s) - len(s.lstrip("#"))
            if lvl <= level and s[lvl : lvl + 1] == " ":
                end = j
                break
    tail = lines[end:]
    new = [*lines[: start + 1], "", body.strip(), ""]
    if tail:
        new.extend(tail)
    out = "\n".join(new)
    return out if out.endswith("\n") else out + "\n"
