"""The pure helpers behind `make bench`: percentiles, ratios, the table, the README section."""

from __future__ import annotations

import math

import pytest

from bench.stats import Row, fmt, percentile, ratio, replace_section, table


def test_percentile_interpolates_between_closest_ranks() -> None:
    xs = [4.0, 1.0, 3.0, 2.0]
    assert percentile(xs, 0) == 1.0
    assert percentile(xs, 100) == 4.0
    assert percentile(xs, 50) == 2.5
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([7.0], 95) == 7.0


def test_percentile_of_nothing_is_nan_and_q_is_checked() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_ratio_guards_against_a_missing_baseline() -> None:
    assert ratio(800, 1000) == 0.8
    assert math.isnan(ratio(1, 0))
    assert math.isnan(ratio(math.nan, 2))


def test_fmt() -> None:
    assert fmt(1234.5) == "1,234"
    assert fmt(0.456) == "0.46"
    assert fmt(12000) == "12,000"
    assert fmt(math.nan) == "—"


def test_table_marks_goals_and_escapes_pipes() -> None:
    out = table(
        [
            Row("a", "1/s", "2/s", "0.50", "≥ 0.8", False, "x|y"),
            Row("b", "1", "—", "—", "—", None),
        ]
    )
    lines = out.splitlines()
    assert lines[0].startswith("| benchmark |")
    assert "**missed**" in lines[2] and "x\\|y" in lines[2]
    assert lines[3].count("—") >= 3


def test_replace_section_keeps_what_follows() -> None:
    text = "# T\n\n## Benchmarks\n\nNot measured yet.\n\n## Next\n\nkept\n"
    out = replace_section(text, "## Benchmarks", "new figures")
    assert "Not measured yet" not in out
    assert "## Benchmarks\n\nnew figures\n\n## Next\n\nkept\n" in out
    # A sub-heading belongs to the section; a missing section is appended.
    nested = replace_section("## Benchmarks\nold\n### sub\nold too\n", "## Benchmarks", "b")
    assert "old" not in nested
    assert replace_section("# T\n", "## Benchmarks", "b").endswith("## Benchmarks\n\nb\n")
