"""The demo county's month through the simulator on the real broker, a faust worker and chDB: the
past reminders reach the member's inbox and the organizer's, a member without a smartphone has
sessions their organizer checked in, a team leader's check-ins land flagged `team`, the slots
have no-shows; a second publication of the reminders doubles nothing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services import topics
from services.demo.county import generate, slice_county
from services.demo.simulate import Simulation, simulate
from services.publisher import Publisher
from services.sessions import assisted_by
from tests.support.demo import demo_client, history_env
from tests.support.stack import Stack, run_async

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

# A month back, as README's history mode: the API and the worker take scans that old.
STACK_ENV = history_env(4 * 7 * 24, review_days=40)


def _sim_args() -> dict[str, Any]:
    county = slice_county(generate(), ("c03",), 40)
    return {"county": county, "weeks": 3, "seed": 5, "lanes": 8, "slots": True}


@pytest.fixture(scope="module")
def sim(stack: Stack) -> Simulation:
    async def go() -> Simulation:
        async with demo_client(stack) as c:
            return await simulate(c, **_sim_args(), signing=stack.settings)

    return run_async(go())


# What the month's plan decides; the inbox also holds the slots agent's service notices (a
# member promoted from a waiting list when another cancels), which depend on the day it runs.
REMINDER_KINDS = {"weekly_nudge", "slot_reminder", "organizer_digest"}


def _inbox(stack: Stack, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The inbox's reminders (REMINDER_KINDS)."""
    r = stack.client.get(path, params={"limit": 200}, headers=headers)
    assert r.status_code == 200, r.text
    return [i for i in r.json()["items"] if i["kind"] in REMINDER_KINDS]


def test_the_month_reminders_reach_the_member_and_the_organizer(
    stack: Stack, sim: Simulation
) -> None:
    month = sim.month
    assert month is not None
    kinds = {n.kind for n in month.notifications}
    assert kinds == REMINDER_KINDS, kinds
    assert sim.truth["month"]["reminders"] == dict(Counter(n.kind for n in month.notifications))
    # Members checked in only by others rate nothing themselves; the rest went through.
    assert sim.truth["feedback"]["accepted"] > 0
    assert not [k for k in sim.truth["feedback"] if k.startswith("refused")], sim.truth["feedback"]
    # A member with both a nudge and a slot reminder, reading their own inbox.
    mine: dict[str, set[str]] = {}
    for n in month.notifications:
        if n.recipient_kind == "member":
            mine.setdefault(n.recipient_id, set()).add(n.notification_id)
    member = max(mine, key=lambda m: len(mine[m]))
    h = stack.token("member", member)
    path = f"/v1/members/{member}/inbox"
    got = stack.wait_for(
        lambda: ids if (ids := {i["id"] for i in _inbox(stack, path, h)}) >= mine[member] else None,
        timeout=90,
    )
    assert got == mine[member], _inbox(stack, path, h)
    cid = sim.loaded.communities["c03"]
    digests = {n.notification_id for n in month.notifications if n.kind == "organizer_digest"}
    org = stack.token("organizer", cid)
    cpath = f"/v1/communities/{cid}/inbox"
    got = stack.wait_for(
        lambda: ids if (ids := {i["id"] for i in _inbox(stack, cpath, org)}) >= digests else None,
        timeout=60,
    )
    assert got == digests
    items = _inbox(stack, cpath, org)
    assert all(i["title"] == "本周未服务名单" for i in items)

    # A second run publishes the same notifications: nothing doubles.
    publisher = Publisher(stack.settings)
    try:
        publisher.send_many_sync(
            [(topics.NOTIFICATIONS, n.recipient_id, n) for n in month.notifications]
        )
    finally:
        publisher.close()
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]

    def landed_twice() -> int | None:
        rows = wh.query(
            "SELECT count() FROM notifications WHERE recipient_id = %(m)s", {"m": member}
        )
        return int(rows[0][0]) if int(rows[0][0]) >= 2 * len(mine[member]) else None

    stack.wait_for(landed_twice, timeout=30)
    assert {i["id"] for i in _inbox(stack, path, h)} == mine[member]
    assert len(_inbox(stack, path, h)) == len(mine[member])


def test_a_member_who_turned_nudges_off_got_none(stack: Stack, sim: Simulation) -> None:
    month = sim.month
    assert month is not None
    # The seed's slice has one member who turned the weekly nudge off (keyed by member key).
    (off,) = [p.member_id for p in month.opt_outs if p.kind == "weekly_nudge"]
    assert not [
        n for n in month.notifications if n.kind == "weekly_nudge" and n.recipient_id == off
    ]
    h = stack.token("member", off)

    def prefs() -> dict[str, Any] | None:
        r = stack.client.get(f"/v1/members/{off}/reminder-preferences", headers=h)
        assert r.status_code == 200, r.text
        got: dict[str, Any] = r.json()
        return got if got["weekly_nudge"] is False else None

    got = stack.wait_for(prefs, timeout=60)
    assert got == {"weekly_nudge": False, "slot_reminder": True}


def _sessions(stack: Stack, member_id: str) -> list[dict[str, Any]]:
    r = stack.client.get(f"/v1/members/{member_id}/sessions", headers=stack.admin)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_a_member_without_a_phone_has_sessions_their_organizer_checked_in(
    stack: Stack, sim: Simulation
) -> None:
    month = sim.month
    assert month is not None
    cid = sim.loaded.communities["c03"]
    assisted = [e for e in month.direct if e.assist == "assisted"]
    assert assisted, "no assisted scan in the month"
    member = assisted[0].member_id
    # Their phone never scanned: everything of theirs came through the organizer.
    assert member not in {sim.loaded.members[s.member_key] for s in sim.scans}

    def flagged() -> list[dict[str, Any]] | None:
        got = [s for s in _sessions(stack, member) if "assisted" in s["flags"]]
        return got if got and any(s["status"] != "open" for s in got) else None

    got = stack.wait_for(flagged, timeout=120)
    assert got, _sessions(stack, member)
    assert {tuple(assisted_by(s["flags"])) for s in got} == {(f"organizer:{cid}",)}


def test_team_check_ins_land_flagged_with_the_leader(stack: Stack, sim: Simulation) -> None:
    month = sim.month
    assert month is not None
    team = [e for e in month.direct if e.assist == "team"]
    assert team, "no team check-in in the month"
    leader = (team[0].assisted_by or "").removeprefix("member:")
    member = team[0].member_id
    # The organizer set the leader: the leader's team lists the member.
    r = stack.client.get("/v1/me/team", headers=stack.token("member", leader))
    assert r.status_code == 200, r.text
    assert member in {i["member_id"] for i in r.json()["items"]}

    def flagged() -> list[dict[str, Any]] | None:
        got = [s for s in _sessions(stack, member) if "team" in s["flags"]]
        return got or None

    got = stack.wait_for(flagged, timeout=120)
    assert got, _sessions(stack, member)
    assert assisted_by(got[0]["flags"]) == [f"member:{leader}"]


def test_the_slots_have_no_shows_on_the_organizer_roster(stack: Stack, sim: Simulation) -> None:
    month = sim.month
    assert month is not None and month.slots.no_shows > 0
    cid = sim.loaded.communities["c03"]
    today = datetime.now(UTC).date()
    org = stack.token("organizer", cid)

    def rows() -> list[dict[str, Any]] | None:
        r = stack.client.get(
            "/v1/activities/no-shows",
            params={"community_id": cid, "from": str(today - timedelta(days=22))},
            headers=org,
        )
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        attended = sum(x["attended"] for x in items)
        return items if attended == month.slots.places_over - month.slots.no_shows else None

    got = stack.wait_for(rows, timeout=120)
    assert got, "the roster's attendance did not come to the plan's"
    # Every place the plan left empty is a no-show on the roster, and only those: in the
    # server's scan window (history mode here) the attendance of every slot is recorded.
    assert sum(x["no_shows"] for x in got) == month.slots.no_shows
    assert sum(x["placed"] for x in got) == month.slots.places_over
    assert 0.05 <= month.slots.no_shows / month.slots.places_over <= 0.2


def test_a_re_run_keeps_the_organizers_team_leader_changes(stack: Stack, sim: Simulation) -> None:
    # Last in this module: it runs the simulation again, as a demo re-run does.
    month = sim.month
    assert month is not None
    leader = next(e for e in month.direct if e.assist == "team").assisted_by or ""
    leader = leader.removeprefix("member:")
    r = stack.client.get("/v1/me/team", headers=stack.token("member", leader))
    assert r.status_code == 200, r.text
    team = sorted(i["member_id"] for i in r.json()["items"])
    assert len(team) >= 3, team
    moved, cleared, kept = team[:3]
    # The organizer hands one member to another leader and takes another out of the team.
    org = stack.token("organizer", sim.loaded.communities["c03"])
    for member, new in ((moved, kept), (cleared, None)):
        r = stack.client.patch(f"/v1/members/{member}", json={"team_leader_id": new}, headers=org)
        assert r.status_code == 200, r.text

    async def again() -> Simulation:
        async with demo_client(stack) as c:
            return await simulate(c, **_sim_args(), signing=stack.settings)

    run_async(again())

    def leader_of(member: str) -> str | None:
        r = stack.client.get(f"/v1/members/{member}", headers=stack.admin)
        assert r.status_code == 200, r.text
        got: str | None = r.json()["team_leader_id"]
        return got

    assert (leader_of(moved), leader_of(cleared), leader_of(kept)) == (kept, None, leader)
