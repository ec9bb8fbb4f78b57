"""The demo county's month beyond the scans (services.demo.reminders_plan, .assisted, .slots):
the past reminders decided with the job's rules, the check-ins organizers and team leaders made
for members, and a realistic share of no-shows. Pure: no network."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services import activities, reminders
from services.demo import assisted as demo_assisted
from services.demo.county import County, generate, slice_county
from services.demo.excusals import plan_excusals
from services.demo.plan import plan_scans
from services.demo.reminders_plan import (
    Person,
    plan_notifications,
    plan_opt_outs,
    served_weeks,
)
from services.demo.slots import plan_slots
from services.events import (
    ActivitySpec,
    ExcusalRecorded,
    NotificationCreated,
    derived_id,
)
from services.timeutil import LOCAL_TZ, iso_week, local

NOW = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # Monday 13:00 in Shanghai
SEED = 7


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in November 2026, in UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=LOCAL_TZ).astimezone(UTC)


# ---- a small community, by hand --------------------------------------------------------------

WEEK = "2026-W48"  # Monday 23 to Sunday 29 November 2026
SLOT_START, SLOT_END = at(28, 9), at(28, 11)  # Saturday


def _scenario(
    quiet: tuple[int, int] = (21, 8), turned_off: dict[str, set[str]] | None = None
) -> dict[str, Any]:
    """A: served Tuesday. B: excused (approved Saturday before). C: a place in Saturday's slot,
    did not serve. D: served Friday afternoon. E: nothing. F: reported after the week. G: signed
    up Friday evening, did not serve. H: signed up, gave the place back Thursday morning."""
    people = [
        Person(k, f"党员{k}", "c1", date(2026, 1, 1) if k != "F" else date(2026, 12, 5))
        for k in "ABCDEFGH"
    ]
    served = {("A", WEEK): at(24, 11), ("D", WEEK): at(27, 15)}
    spec = ActivitySpec(
        community_id="c1",
        title="固定服务日：小区环境整治",
        station_id="st1",
        starts_at=SLOT_START,
        ends_at=SLOT_END,
        capacity=10,
        signup_deadline=SLOT_START - timedelta(hours=1),
        cancel_deadline=SLOT_START - timedelta(hours=2),
    )
    org = {"actor_role": "organizer", "actor_id": "c1"}
    cmds = [
        activities.command(
            activity_id="act1", action="create", at=at(20, 9), basis="t", spec=spec, **org
        )
    ]

    def signup(member: str, when: datetime, action: str = "sign_up") -> None:
        cmds.append(
            activities.command(
                activity_id="act1",
                action=action,
                at=when,
                basis=f"t:{member}:{action}",
                actor_role="member",
                actor_id=member,
                member_id=member,
                member_unit_id="u1" if action == "sign_up" else None,
                member_community_id="c1" if action == "sign_up" else None,
            )
        )

    signup("C", at(22, 10))
    signup("H", at(22, 11))
    signup("G", at(27, 20))
    signup("H", at(26, 9), "withdraw")
    ex = {"request_id": "exc_b", "member_id": "B", "community_id": "c1", "unit_id": "u1"}
    excusals = [
        ExcusalRecorded(
            event_id="e1",
            occurred_at=at(20, 9),
            action="request",
            weeks=(WEEK,),
            reason="business_trip",
            actor_role="member",
            actor_id="B",
            **ex,
        ),
        ExcusalRecorded(
            event_id="e2",
            occurred_at=at(21, 9),
            action="approve",
            actor_role="organizer",
            actor_id="c1",
            **ex,
        ),
    ]
    plan = plan_notifications(
        now=NOW,
        since=at(23, 0),
        communities=[("c1", "南城社区")],
        people=people,
        served=served,
        commands=cmds,
        excusals=excusals,
        station_names={"st1": "南城党群服务站"},
        quiet=quiet,
        turned_off=turned_off,
    )
    return {"plan": plan, "people": people}


def _by(plan: Any, kind: str) -> list[NotificationCreated]:
    return [n for n in plan.notifications if n.kind == kind]


def test_nudges_skip_the_served_the_excused_the_signed_up_and_the_unregistered() -> None:
    plan = _scenario()["plan"]
    nudged = Counter(
        (n.recipient_id, local(n.occurred_at).strftime("%a %H:%M"))
        for n in _by(plan, "weekly_nudge")
    )
    assert set(nudged) == {
        # Thursday 18:00: not A (served Tuesday), B (excused), C (a place), F (not registered);
        # D serves only on Friday, G signs up only on Friday, H gave the place back that morning.
        ("D", "Thu 18:00"),
        ("E", "Thu 18:00"),
        ("G", "Thu 18:00"),
        ("H", "Thu 18:00"),
        # Saturday 10:00: D has served, G has signed up.
        ("E", "Sat 10:00"),
        ("H", "Sat 10:00"),
    }
    assert max(nudged.values()) == 1
    for n in _by(plan, "weekly_nudge"):
        moment = "thu" if local(n.occurred_at).weekday() == 3 else "sat"
        # The job's id: a re-run, or the job deciding the moment itself, is the same notice.
        assert n.notification_id == reminders.notification_id(
            "weekly_nudge", n.recipient_id, WEEK, moment
        )
        assert n.week == WEEK and n.community_id == "c1" and "党员" in n.body


def test_the_sunday_digest_names_who_is_still_not_served() -> None:
    (digest,) = _by(_scenario()["plan"], "organizer_digest")
    assert digest.recipient_kind == "community" and digest.recipient_id == "c1"
    assert local(digest.occurred_at).strftime("%a %H:%M") == "Sun 18:00"
    # Registered: all but F (7); not served: C, E, G, H (B is excused, A and D served).
    assert "已报到党员7人" in digest.body and "尚有4人" in digest.body
    assert "党员C、党员E、党员G、党员H" in digest.body
    assert digest.notification_id == reminders.notification_id(
        "organizer_digest", "c1", WEEK, "sun"
    )


def test_slot_reminders_go_to_the_places_held_at_each_moment() -> None:
    got = {
        (n.recipient_id, local(n.occurred_at).strftime("%a %H:%M"))
        for n in _by(_scenario()["plan"], "slot_reminder")
    }
    # C: the day before and the hour before; G signed up after the day-before moment; H gave the
    # place back before either.
    assert got == {("C", "Fri 09:00"), ("C", "Sat 08:00"), ("G", "Sat 08:00")}


def test_quiet_hours_delay_a_moment_within_its_week_and_drop_what_cannot_wait() -> None:
    plan = _scenario(quiet=(17, 11))["plan"]
    for n in plan.notifications:
        assert not reminders.in_quiet_hours(n.occurred_at, 17, 11), n
    nudges = {
        (n.recipient_id, local(n.occurred_at).strftime("%a %H:%M"), n.notification_id)
        for n in _by(plan, "weekly_nudge")
    }
    # Thursday 18:00 is quiet: decided at Friday 11:00, still Thursday's notice (D has not
    # served yet then); Saturday 10:00 waits until 11:00.
    thu = reminders.notification_id("weekly_nudge", "D", WEEK, "thu")
    assert ("D", "Fri 11:00", thu) in nudges
    assert {r for r, t, _ in nudges if t == "Sat 11:00"} == {"E", "H"}
    # The hour-before reminder (08:00-09:00) is all quiet, and the slot has started by 11:00.
    assert {
        (n.recipient_id, local(n.occurred_at).strftime("%a %H:%M"))
        for n in _by(plan, "slot_reminder")
    } == {("C", "Fri 11:00")}
    # Sunday 18:00 is quiet until Monday 11:00: another week, so the digest is dropped.
    assert _by(plan, "organizer_digest") == []


def test_a_kind_turned_off_is_not_sent_and_the_digest_still_names_them() -> None:
    plan = _scenario(turned_off={"weekly_nudge": {"E"}, "slot_reminder": {"C"}})["plan"]
    assert {n.recipient_id for n in _by(plan, "weekly_nudge")} == {"D", "G", "H"}
    assert {n.recipient_id for n in _by(plan, "slot_reminder")} == {"G"}
    (digest,) = _by(plan, "organizer_digest")
    assert "党员C、党员E、党员G、党员H" in digest.body


def test_a_few_members_turned_reminders_off_before_the_month() -> None:
    members = {f"m{i:04d}": f"mem_{i}" for i in range(2000)}
    when = at(1, 9)
    opt = plan_opt_outs(members, SEED, when)
    per_kind = Counter(p.kind for p in opt)
    assert 40 <= per_kind["weekly_nudge"] <= 120 and 5 <= per_kind["slot_reminder"] <= 40
    assert all(not p.enabled and p.occurred_at == when for p in opt)
    assert all(p.set_by == f"member:{p.member_id}" for p in opt)
    again = plan_opt_outs(members, SEED, at(2, 9))
    assert [p.event_id for p in again] == [p.event_id for p in opt]


# ---- the county's month ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def month() -> dict[str, Any]:
    county: County = generate(SEED)
    county = slice_county(county, tuple(c.key for c in county.communities[:2]), 500)
    ids = {k: k for k in (*(u.key for u in county.units), *(c.key for c in county.communities))}
    ids |= {s.key: s.key for s in county.stations} | {m.key: m.key for m in county.members}
    ids |= {g.key: g.key for g in county.grids}
    start = NOW - timedelta(weeks=3)
    scans = plan_scans(county, start, 3, SEED)
    busy = {(s.member_key, local(s.scanned_at).date()) for s in scans}
    no_phone = demo_assisted.without_phone(county, SEED)
    teams = demo_assisted.plan_teams(county, SEED, no_phone)
    slots = plan_slots(county, ids, NOW, SEED, busy, teams, no_phone)
    excusals = plan_excusals(county, ids, NOW, SEED, busy)
    direct = demo_assisted.assisted_scans(county, ids, scans, no_phone)
    direct += demo_assisted.team_scans(county, ids, slots.team_checkins)
    phones = [s for s in scans if s.member_key not in no_phone]
    phones += [s for s in slots.scans if start <= s.scanned_at < NOW]
    accepted = [(s.member_key, s) for s in phones]
    accepted += [(p.member_key, p) for p in demo_assisted.as_planned(direct, ids)]
    accepted.sort(key=lambda x: x[1].send_at)
    served = served_weeks(accepted)

    def plan(quiet: tuple[int, int] = (21, 8)) -> Any:
        return plan_notifications(
            now=NOW,
            since=start,
            communities=[(c.key, c.name) for c in county.communities],
            people=[Person(m.key, m.name, m.community_key, m.reported_on) for m in county.members],
            served=served,
            commands=slots.commands,
            excusals=excusals.events,
            station_names={s.key: s.name for s in county.stations},
            quiet=quiet,
        )

    return {
        "county": county,
        "ids": ids,
        "scans": scans,
        "no_phone": no_phone,
        "teams": teams,
        "slots": slots,
        "direct": direct,
        "served": served,
        "plan": plan(),
        "replan": plan,
    }


def test_the_month_has_every_kind_of_reminder(month: dict[str, Any]) -> None:
    counts = month["plan"].counts
    assert counts["weekly_nudge"] > 100 and counts["slot_reminder"] > 50
    assert counts["organizer_digest"] == 2 * 3  # two communities, three Sundays
    titles = {n.title for n in month["plan"].notifications if n.kind == "slot_reminder"}
    assert "活动即将开始" in titles and "活动提醒：明天有服务" in titles


def test_no_nudge_once_served_at_most_two_a_week_none_in_quiet_hours(
    month: dict[str, Any],
) -> None:
    served, plan = month["served"], month["plan"]
    per_week = Counter(
        (n.recipient_id, n.week) for n in plan.notifications if n.kind == "weekly_nudge"
    )
    assert per_week and max(per_week.values()) <= 2
    nudged_then_served = 0
    for n in plan.notifications:
        assert not reminders.in_quiet_hours(n.occurred_at, 21, 8), n
        assert n.occurred_at < NOW
        if n.kind != "weekly_nudge":
            continue
        when = served.get((n.recipient_id, n.week))
        assert when is None or when > n.occurred_at, n
        nudged_then_served += when is not None
    # Not vacuous: members who served earlier in the week got none, some nudged served later.
    assert nudged_then_served > 0
    assert any((m, w) not in per_week for (m, w), t in served.items() if local(t).weekday() < 3)


def test_the_plan_is_deterministic_with_the_job_ids(month: dict[str, Any]) -> None:
    again = month["replan"]()
    assert [n.notification_id for n in again.notifications] == [
        n.notification_id for n in month["plan"].notifications
    ]
    for n in month["plan"].notifications:
        assert n.event_id == n.notification_id
        assert n.week == iso_week(n.occurred_at) or n.kind == "slot_reminder"


def test_members_without_a_phone_are_checked_in_by_their_organizer(
    month: dict[str, Any],
) -> None:
    county, no_phone, direct = month["county"], month["no_phone"], month["direct"]
    community = {m.key: m.community_key for m in county.members}
    assert {community[k] for k in no_phone} == {c.key for c in county.communities}
    assert len(no_phone) <= 0.03 * len(county.members) + len(county.communities)
    assisted = [e for e in direct if e.assist == "assisted"]
    planned = [s for s in month["scans"] if s.member_key in no_phone]
    assert assisted and len(assisted) == len(planned)
    for e in assisted:
        by = f"organizer:{community[e.member_id]}"
        assert e.assisted_by == by and e.received_at == e.occurred_at and e.device_id is None
        assert e.event_id == derived_id("checkin", e.member_id, by, e.client_event_id)
    # They sign up for nothing (a sign-up is a tap on the phone page).
    signed = {c.member_id for c in month["slots"].commands if c.action == "sign_up"}
    assert not signed & no_phone
    # A re-plan is the same scans.
    again = demo_assisted.assisted_scans(county, month["ids"], month["scans"], no_phone)
    assert [e.event_id for e in again] == [e.event_id for e in assisted]


def test_team_leaders_check_in_the_members_of_their_team_who_came(
    month: dict[str, Any],
) -> None:
    county, teams, slots = month["county"], month["teams"], month["slots"]
    community = {m.key: m.community_key for m in county.members}
    assert teams and slots.team_checkins
    for ckey, team in teams.items():
        assert team.leader not in team.members and team.leader not in month["no_phone"]
        assert {community[k] for k in (team.leader, *team.members)} == {ckey}
    states: dict[str, activities.ActivityState] = {}
    for c in slots.commands:
        states[c.activity_id], _ = activities.apply(
            states.get(c.activity_id, activities.ActivityState()), c
        )
    attendance_scans = {(s.member_key, s.scanned_at.date()) for s in slots.scans}
    for t in slots.team_checkins:
        placed = {s.member_id for s in states[t.activity_id].placed()}
        assert {t.leader, *t.members} <= placed
        # The leader scans in on their own phone; the members they check in scan nothing.
        assert (t.leader, t.t_in.date()) in attendance_scans
        assert not {(k, t.t_in.date()) for k in t.members} & attendance_scans
    team = [e for e in month["direct"] if e.assist == "team"]
    assert len(team) == 2 * sum(len(t.members) for t in slots.team_checkins)
    leaders = {f"member:{t.leader}" for t in slots.team_checkins}
    assert {e.assisted_by for e in team} == leaders
    assert all(e.activity_id for e in team)


def test_a_realistic_share_of_no_shows() -> None:
    county = generate(SEED)
    ids = {k: k for k in (*(u.key for u in county.units), *(c.key for c in county.communities))}
    ids |= {s.key: s.key for s in county.stations} | {m.key: m.key for m in county.members}
    scans = plan_scans(county, NOW - timedelta(weeks=3), 3, SEED)
    busy = {(s.member_key, local(s.scanned_at).date()) for s in scans}
    no_phone = demo_assisted.without_phone(county, SEED)
    plan = plan_slots(
        county, ids, NOW, SEED, busy, demo_assisted.plan_teams(county, SEED, no_phone), no_phone
    )
    assert plan.places_over > 500
    assert 0.08 <= plan.no_shows / plan.places_over <= 0.15


def test_a_leader_counts_as_set_once_any_change_named_one() -> None:
    def entry(*changes: tuple[str, Any, Any]) -> dict[str, Any]:
        return {"changes": [{"field": f, "before": b, "after": a} for f, b, a in changes]}

    created = entry(("name", None, "周敏"), ("unit_id", None, "u1"))
    assert not demo_assisted.leader_ever_set([])
    assert not demo_assisted.leader_ever_set([created, entry(("phone", "138****0001", None))])
    assert demo_assisted.leader_ever_set([created, entry(("team_leader_id", None, "m9"))])
    # Set, then cleared by the organizer: it was set, and a re-run must not set it again.
    cleared = [entry(("team_leader_id", None, "m9")), entry(("team_leader_id", "m9", None))]
    assert demo_assisted.leader_ever_set(cleared)
    assert demo_assisted.leader_ever_set(cleared[1:])
