"""Towns (issue 15) without a database: the demo county's towns, the registry's town kind, the
roll-ups' pure parts (weeks back, the level's total), the county and town tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.access import Facts, allows, list_scope
from services.demo.county import N_COMMUNITIES, N_MEMBERS, TOWNS, generate, slice_county
from services.events import Community, Town
from services.reads.drilldown import DrillRow, TrendPoint, _weeks_back, total
from services.registry import COMMUNITY, KINDS, TOWN, diff, facts_of
from services.settings import Settings
from services.tokens import Principal, issue_bearer, verify_bearer

NOW = datetime(2026, 11, 30, 8, tzinfo=UTC)


def test_the_demo_county_lies_in_two_towns_with_the_cases_totals() -> None:
    county = generate()
    assert [t.name for t in county.towns] == ["巩昌镇", "文峰镇"]
    assert len(county.communities) == N_COMMUNITIES == 18
    assert len(county.members) == N_MEMBERS == 2280
    by_town: dict[str, list[str]] = {}
    for c in county.communities:
        by_town.setdefault(c.town_key, []).append(c.name)
    assert sorted(len(v) for v in by_town.values()) == [7, 11]
    assert sum(n for *_, n in TOWNS) == N_COMMUNITIES
    names = {t.key: t.name for t in county.towns}
    town_of = {c.name: names[c.town_key] for c in county.communities}
    # The case's model communities: 巩昌镇南城, 西城 and 文峰镇交通, 东铺.
    assert town_of["南城社区"] == town_of["西城社区"] == "巩昌镇"
    assert town_of["交通社区"] == town_of["东铺社区"] == "文峰镇"


def test_a_slice_keeps_only_the_towns_of_its_communities() -> None:
    county = generate()
    first = county.communities[0]
    part = slice_county(county, (first.key,), 50)
    assert [t.key for t in part.towns] == [first.town_key]


def test_a_town_is_a_registry_kind_and_a_community_names_its_town() -> None:
    assert KINDS["town"] is TOWN and TOWN.table == "towns"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    before = Community(id="comm_1", name="南城社区", version=1, updated_at=at, updated_by="a")
    after = before.model_copy(update={"town_id": "town_1", "version": 2})
    # Moving a community to a town is a change with history, like any field.
    assert [(c.field, c.before, c.after) for c in diff(before, after)] == [
        ("town_id", "null", '"town_1"')
    ]
    assert facts_of(COMMUNITY, after.model_dump()) == Facts(community_id="comm_1", town_id="town_1")
    town = Town(id="town_1", name="巩昌镇", version=1, updated_at=at, updated_by="a")
    assert facts_of(TOWN, town.model_dump()) == Facts(town_id="town_1")
    # Communities stored before towns existed still parse.
    assert Community.model_validate({**before.model_dump(), "town_id": None}).town_id is None


def test_county_and_town_tokens_round_trip() -> None:
    s = Settings(secret_key="k" * 32)
    for role, subject in (("county", "county"), ("town", "town_1")):
        p = verify_bearer(s, issue_bearer(s, role, subject))  # type: ignore[arg-type]
        assert (p.role, p.subject_id) == (role, subject)


def test_the_county_office_reads_but_never_changes() -> None:
    county = Principal("county", "county", "t", 1)
    of_c1 = Facts(community_id="comm_1", town_id="town_1")
    assert allows(county, "community_desk", "read", of_c1)
    assert not allows(county, "community_desk", "change", of_c1)
    assert not allows(county, "station_token", "read", of_c1)
    town = Principal("town", "town_1", "t", 1)
    assert allows(town, "rollup", "read", of_c1)
    assert not allows(town, "rollup", "read", Facts())
    assert list_scope(town, "member") is None
    assert list_scope(county, "member") is not None and list_scope(county, "member").unconfined  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("week", "n", "expected"),
    [
        ("2026-W03", 4, ["2025-W52", "2026-W01", "2026-W02", "2026-W03"]),
        # 2020 had 53 ISO weeks.
        ("2021-W01", 2, ["2020-W53", "2021-W01"]),
        ("2026-W48", 1, ["2026-W48"]),
    ],
)
def test_weeks_back_cross_years(week: str, n: int, expected: list[str]) -> None:
    assert _weeks_back(week, n) == expected


def test_a_levels_total_adds_its_rows() -> None:
    def row(k: str, reg: int, served: int, secs: int) -> DrillRow:
        r = DrillRow(k, k, reg, served, secs, reg + 1, reg, 1, reg - served)
        r.trend = [
            TrendPoint("2026-W47", reg, served - 1, secs),
            TrendPoint("2026-W48", reg, served, secs),
        ]
        return r

    t = total([row("a", 10, 4, 3600), row("b", 5, 5, 1800)])
    assert (t.registered, t.served, t.seconds, t.lapsed, t.wishes_fulfilled) == (15, 9, 5400, 6, 2)
    assert t.rate == 0.6 and t.hours == 1.5
    assert (t.active, t.reported, t.reported_rate) == (17, 15, round(15 / 17, 4))
    assert [(p.week, p.served) for p in t.trend] == [("2026-W47", 7), ("2026-W48", 9)]
    assert total([]).rate == 0.0
