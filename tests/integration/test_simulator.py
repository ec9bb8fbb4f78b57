"""A simulated week of a slice of the demo county, through the public API, into ClickHouse.

Real broker, real faust worker, chDB: the loader creates the slice through the registry's
endpoints and the member import, the simulator sends every member's scans with their own
token, and what ClickHouse then holds per member (sessions, credited seconds) must equal the
simulator's truth. The week reaches further back than the API's 72 h scan window, so the run
also shows that window at work: the older scans are refused, never half-counted.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.demo.county import County, generate, slice_county
from services.demo.loader import load_county
from services.demo.simulate import Simulation, simulate
from services.privacy import mask_phone
from tests.support.demo import demo_client
from tests.support.stack import Stack, run_async

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@pytest.fixture(scope="module")
def county() -> County:
    return slice_county(generate(), ("c01", "c02"), 60)


@pytest.fixture(scope="module")
def run(stack: Stack, county: County) -> tuple[Simulation, datetime, datetime]:
    async def go() -> Simulation:
        async with demo_client(stack) as c:
            return await simulate(c, county, weeks=1, seed=11, lanes=16, signing=stack.settings)

    started = datetime.now(UTC)
    sim = run_async(go())
    return sim, started, datetime.now(UTC)


def _in_clickhouse(stack: Stack, member_ids: list[str]) -> dict[str, tuple[int, int]]:
    rows = stack.client.app.state.ctx.warehouse.query(
        """
        SELECT member_id, countIf(counted = 1), sum(credited_seconds)
        FROM sessions FINAL
        WHERE member_id IN %(ids)s
          AND status NOT IN ('open', 'rejected') AND voided = 0
        GROUP BY member_id
        """,
        {"ids": member_ids},
    )
    # Members whose only sessions count nothing (a session still open) are left out, as in the
    # truth's list of members with sessions.
    return {r[0]: (int(r[1]), int(r[2])) for r in rows if int(r[1]) or int(r[2])}


def test_the_slice_is_loaded_and_a_reload_creates_nothing(
    stack: Stack, county: County, run: Any
) -> None:
    sim: Simulation = run[0]
    loaded = sim.loaded
    assert len(loaded.members) == 60 and len(set(loaded.members.values())) == 60
    assert len(loaded.stations) == len(county.stations)
    assert len(loaded.grids) == len(county.grids)

    async def again() -> Any:
        async with demo_client(stack) as c:
            return await load_county(c, county)

    second = run_async(again())
    assert second.created == {
        "units": 0,
        "towns": 0,
        "communities": 0,
        "grids": 0,
        "stations": 0,
    }
    # Each community lies in its town (issue 15).
    for c in county.communities:
        got = stack.client.get(
            f"/v1/communities/{loaded.communities[c.key]}", headers=stack.admin
        ).json()
        assert got["town_id"] == loaded.towns[c.town_key]
    assert second.members == loaded.members
    assert second.grids == loaded.grids
    r = stack.client.get(
        "/v1/members",
        params={"community_id": loaded.communities["c01"], "limit": 500},
        headers=stack.admin,
    )
    assert r.status_code == 200
    c01 = sum(1 for m in county.members if m.community_key == "c01")
    assert r.json()["total"] == c01
    # The import carried every column: phone, grid (a level-4 grid of the member's community),
    # party branch and report date.
    m = county.members[0]
    got = stack.client.get(f"/v1/members/{loaded.members[m.key]}", headers=stack.admin).json()
    assert got["phone"] == mask_phone(m.phone) and got["grid_id"] == loaded.grids[m.grid_key]
    assert got["reported_on"] == m.reported_on.isoformat()


def test_the_72h_window_refuses_only_the_older_scans(run: Any) -> None:
    sim, started, finished = run
    res = sim.result
    assert res.sent == res.planned > 50
    assert set(res.refused) <= {"scanned_at_out_of_range"}
    window = timedelta(hours=72)
    for scan, _ in res.refused_scans:
        assert scan.scanned_at < finished - window
    accepted = [s for lane in res.accepted_scans for _, s, _ in lane]
    assert accepted and all(s.scanned_at >= started - window for s in accepted)
    # A week is longer than the window: some scans were refused, most recent ones were not.
    assert res.refused["scanned_at_out_of_range"] > 0
    assert sim.truth["summary"]["accepted"] == res.accepted


def test_two_way_feedback_follows_the_week(stack: Stack, run: Any) -> None:
    sim: Simulation = run[0]
    served = {mid for lane in sim.result.accepted_scans for mid, _, _ in lane}
    fb = sim.truth["feedback"]
    # Every member who served rated the arrangement and was rated by their organizer.
    assert fb == {"period": fb["period"], "accepted": 2 * len(served)}
    some = sorted(served)[0]
    r = stack.client.get(f"/v1/members/{some}/feedback", headers=stack.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    # The member's feedback over the year: one rating each way, from this run.
    assert body["member_service"]["count"] == 1
    assert body["community_arrangement"]["count"] == 1


def test_clickhouse_holds_exactly_the_simulators_truth(stack: Stack, run: Any) -> None:
    sim: Simulation = run[0]
    truth = sim.truth["members"]
    expected = {mid: (t["sessions"], t["seconds"]) for mid, t in truth.items() if t["sessions"]}
    assert sum(n for n, _ in expected.values()) >= 10
    ids = list(truth)
    deadline = time.monotonic() + 45
    got: dict[str, tuple[int, int]] = {}
    while time.monotonic() < deadline:
        got = _in_clickhouse(stack, ids)
        if got == expected:
            break
        time.sleep(0.5)
    assert got == expected
    # And what the API serves a member's HR matches the truth's hours.
    some = next(mid for mid, t in truth.items() if t["sessions"])
    hr = stack.token("hr", truth[some]["unit_id"])
    r = stack.client.get(f"/v1/members/{some}/hours", headers=hr)
    assert r.status_code == 200
    assert r.json()["sessions"] == truth[some]["sessions"]
    assert r.json()["hours"] == truth[some]["hours"]
