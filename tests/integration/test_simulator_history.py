"""Weeks of history through the public API: with the scan-age bound configured longer (the
foundation contract allows it, e.g. for a county loading its past), a month of a slice of the
county runs in seconds and ClickHouse holds exactly the simulator's truth, week by week."""

from __future__ import annotations

import time
from typing import Any

import pytest

from services.demo.county import County, generate, slice_county
from services.demo.simulate import Simulation, simulate
from tests.support.demo import demo_client, history_env
from tests.support.stack import Stack, run_async

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

# Six weeks back, as README's history mode: the API and the worker take scans that old.
STACK_ENV = history_env(6 * 7 * 24, review_days=60)


@pytest.fixture(scope="module")
def run(stack: Stack) -> tuple[County, Simulation]:
    county = slice_county(generate(), ("c03",), 40)

    async def go() -> Simulation:
        async with demo_client(stack) as c:
            return await simulate(c, county, weeks=4, seed=5, lanes=16, signing=stack.settings)

    return county, run_async(go())


def test_a_month_of_history_lands_exactly(stack: Stack, run: Any) -> None:
    _, sim = run
    res = sim.result
    assert res.sent == res.planned > 100
    assert not res.refused, res.refused
    truth = sim.truth["members"]
    expected = {mid: (t["sessions"], t["seconds"]) for mid, t in truth.items() if t["sessions"]}
    assert sum(n for n, _ in expected.values()) >= 60
    deadline = time.monotonic() + 90
    got: dict[str, tuple[int, int]] = {}
    while time.monotonic() < deadline:
        rows = stack.client.app.state.ctx.warehouse.query(  # type: ignore[attr-defined]
            """
            SELECT member_id, countIf(counted = 1), sum(credited_seconds) FROM sessions FINAL
            WHERE member_id IN %(ids)s AND status NOT IN ('open', 'rejected') AND voided = 0
            GROUP BY member_id
            """,
            {"ids": list(truth)},
        )
        got = {r[0]: (int(r[1]), int(r[2])) for r in rows if int(r[1]) or int(r[2])}
        if got == expected:
            break
        time.sleep(1)
    assert got == expected
    # The weekly rollup agrees with the sessions, member by member, over the whole month: its
    # topic is loaded in batches of its own, so wait until everything is written.
    assert stack.settled(), "the pipeline did not settle"
    weekly = dict(
        stack.client.app.state.ctx.warehouse.query(  # type: ignore[attr-defined]
            """
            SELECT member_id, sum(credited_seconds) FROM member_weeks FINAL
            WHERE member_id IN %(ids)s GROUP BY member_id
            """,
            {"ids": list(truth)},
        )
    )
    assert {m: int(weekly.get(m, 0)) for m in expected} == {m: s for m, (_, s) in expected.items()}
