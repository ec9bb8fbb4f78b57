"""The demo county's figures are the case's, exactly; the same seed gives the same county."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from services.demo.county import (
    COMMUNITY_NAMES,
    IMPORT_HEADERS,
    County,
    generate,
    members_csv,
    slice_county,
)
from services.demo.plan import expected_truth, habit_of, plan_scans


@pytest.fixture(scope="module")
def county() -> County:
    return generate()


def test_figures_are_the_cases(county: County) -> None:
    assert len(county.communities) == 18
    assert len(county.units) == 100
    assert Counter(s.kind for s in county.stations) == {"service_station": 68, "member_post": 19}
    assert Counter(g.level for g in county.grids) == {4: 493, 5: 620}
    assert len(county.members) == 2280
    assert Counter(u.kind for u in county.units) == {
        "organ": 55,
        "institution": 30,
        "enterprise": 15,
    }
    assert sum(c.is_new for c in county.communities) == 7
    assert all(c.households <= 3000 for c in county.communities)
    assert [c.name for c in county.communities] == list(COMMUNITY_NAMES)


def test_ids_and_names_are_unique_where_the_import_matches_by_them(county: County) -> None:
    for part in (county.units, county.communities, county.grids, county.stations, county.members):
        keys = [x.key for x in part]
        assert len(set(keys)) == len(keys)
    assert len({u.name for u in county.units}) == 100
    # The import names grids within a community and stations are listed per community.
    assert len({(g.community_key, g.name) for g in county.grids}) == len(county.grids)
    assert len({(s.community_key, s.name) for s in county.stations}) == len(county.stations)
    phones = [m.phone for m in county.members]
    assert len(set(phones)) == 2280
    assert all(re.fullmatch(r"1[3-9]\d{9}", p) for p in phones)


def test_every_member_lives_in_a_level4_grid_of_their_community(county: County) -> None:
    grids = {g.key: g for g in county.grids}
    units = {u.key for u in county.units}
    for m in county.members:
        g = grids[m.grid_key]
        assert g.level == 4 and g.community_key == m.community_key
        assert m.unit_key in units
        assert m.party_branch.startswith(county.unit(m.unit_key).name)
        assert 2 <= len(m.name) <= 4
        assert date(2021, 7, 1) <= m.reported_on <= date(2026, 10, 31)
    for g in county.grids:
        if g.level == 5:
            assert g.parent_key is not None
            parent = grids[g.parent_key]
            assert parent.level == 4 and parent.community_key == g.community_key
        else:
            assert g.parent_key is None
    # Every community has at least three service stations, and members in most of them.
    per = Counter(s.community_key for s in county.stations if s.kind == "service_station")
    assert min(per.values()) >= 3
    years = Counter(m.reported_on.year for m in county.members)
    assert sum(n for y, n in years.items() if 2022 <= y <= 2026) > 0.9 * 2280


def test_same_seed_same_county_other_seed_other_county(county: County) -> None:
    again = generate()
    assert again == county
    assert again.fingerprint() == county.fingerprint()
    assert members_csv(again) == members_csv(county)
    other = generate(7)
    assert other.fingerprint() != county.fingerprint()
    assert [m.phone for m in other.members] != [m.phone for m in county.members]


def test_members_csv_is_the_import_template(county: County) -> None:
    raw = members_csv(county)
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == IMPORT_HEADERS
    assert len(rows) == 2281
    m = county.members[0]
    assert rows[1] == [
        m.name,
        m.phone,
        county.unit(m.unit_key).name,
        county.community(m.community_key).name,
        county.grid(m.grid_key).name,
        m.reported_on.isoformat(),
    ]


def test_slice_is_self_consistent(county: County) -> None:
    part = slice_county(county, ("c01",), 30)
    assert len(part.members) == 30 and [c.key for c in part.communities] == ["c01"]
    assert {m.unit_key for m in part.members} == {u.key for u in part.units}
    assert all(s.community_key == "c01" for s in part.stations)


def test_a_planned_week_has_the_behaviours_and_a_consistent_truth(county: County) -> None:
    start = datetime(2026, 11, 2, tzinfo=UTC)
    scans = plan_scans(county, start, 1, seed=1)
    assert scans == plan_scans(county, start, 1, seed=1)
    assert all(start <= s.scanned_at <= s.send_at < start + timedelta(weeks=1) for s in scans)
    notes = Counter(s.note for s in scans)
    assert notes["forgot"] > 0 and notes["double"] > 0 and notes["offline"] > 0
    habits = Counter(habit_of(1, m) for m in county.members)
    assert habits["weekly"] > 1200 and 0 < habits["never"] < 300
    # A member's scans arrive in the order the phone made them.
    last: dict[str, datetime] = {}
    for s in scans:
        assert last.get(s.member_key, start) <= s.scanned_at
        last[s.member_key] = s.scanned_at

    truth = expected_truth(
        ((s.member_key, s, s.send_at) for s in scans), start + timedelta(weeks=1)
    )
    planned_sessions = sum(1 for s in scans if s.action == "in" and s.note != "double")
    forgotten = sum(1 for s in scans if s.note == "forgot")
    counted = sum(t.sessions for t in truth.values())
    still_open = sum(t.open_sessions for t in truth.values())
    # Every check-in is a session; a double scan is not a second one; a forgotten check-out
    # stays open until the member's next check-in (then closed with no credit, so below the
    # weekly minimum: no service until the organizer reviews it). Planned services last an hour
    # or more, so every other session counts.
    assert counted + forgotten == planned_sessions
    assert still_open <= forgotten
    # Hours, worked out from the plan alone: each check-out credits the time since the
    # member's first check-in of that session (a double scan does not restart it).
    expected_seconds = 0
    opened: dict[str, datetime] = {}
    for s in scans:
        if s.action == "in":
            if s.note != "double":
                opened[s.member_key] = s.scanned_at
        else:
            expected_seconds += int((s.scanned_at - opened.pop(s.member_key)).total_seconds())
    assert expected_seconds > 0
    assert sum(t.seconds for t in truth.values()) == expected_seconds
