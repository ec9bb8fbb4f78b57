"""The rules of service slots and sign-up (services.activities): the state machine, the race
for the last place, the waiting list's order, refusals, recurring slots."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.activities import (
    ActivityState,
    Outcome,
    apply,
    changed_signups,
    command,
    generate,
    notices,
    occurrences,
    parse_rule,
    refusal,
    rejection,
    slot_id,
)
from services.events import ActivityCommand, ActivitySpec, NotificationCreated
from services.timeutil import LOCAL_TZ

C1, C2 = "comm_1", "comm_2"
START = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)  # Saturday 09:00 in Shanghai
T0 = START - timedelta(days=3)


def spec(**kw: object) -> ActivitySpec:
    base: dict[str, object] = {
        "community_id": C1,
        "title": "固定服务日",
        "station_id": "st_1",
        "starts_at": START,
        "ends_at": START + timedelta(hours=2),
        "capacity": 2,
        "signup_deadline": START - timedelta(hours=1),
        "cancel_deadline": START - timedelta(hours=2),
    }
    base.update(kw)
    return ActivitySpec.model_validate(base)


_n = 0


def cmd(action: str, member: str | None = None, at: datetime = T0, **kw: object) -> ActivityCommand:
    global _n
    _n += 1
    fields: dict[str, object] = (
        {"actor_role": "member", "actor_id": member}
        if member
        else {"actor_role": "organizer", "actor_id": C1}
    )
    if member:
        fields |= {"member_id": member, "member_unit_id": "unit_1", "member_community_id": C1}
    fields.update(kw)
    return command(activity_id="act_1", action=action, at=at, basis=f"n{_n}", **fields)  # type: ignore[arg-type]


def created(**kw: object) -> ActivityState:
    state, out = apply(ActivityState(), cmd("create", spec=spec(**kw)))
    assert [o.kind for o in out] == ["created"]
    return state


def run(state: ActivityState, *cmds: ActivityCommand) -> tuple[ActivityState, list[Outcome]]:
    outs: list[Outcome] = []
    for c in cmds:
        state, out = apply(state, c)
        outs.extend(out)
    return state, outs


def test_race_for_the_last_place_gives_one_place_and_one_waiting() -> None:
    state, _ = run(created(), cmd("sign_up", "m1"))
    state, out = run(state, cmd("sign_up", "m2"), cmd("sign_up", "m3"))
    assert [(o.kind, o.member_id, o.position) for o in out] == [
        ("placed", "m2", None),
        ("waiting", "m3", 1),
    ]
    assert [s.member_id for s in state.placed()] == ["m1", "m2"]
    assert state.activity is not None
    assert (state.activity.placed, state.activity.waiting) == (2, 1)


def test_cancel_promotes_the_first_waiting_in_order() -> None:
    state, _ = run(
        created(capacity=1),
        cmd("sign_up", "m1"),
        cmd("sign_up", "m2"),
        cmd("sign_up", "m3"),
    )
    assert state.position("m3") == 2
    state, out = run(state, cmd("withdraw", "m1"))
    assert [(o.kind, o.member_id) for o in out] == [("withdrawn", "m1"), ("promoted", "m2")]
    assert [s.member_id for s in state.placed()] == ["m2"]
    assert state.position("m3") == 1
    # Leaving the waiting list frees no place and promotes nobody.
    state, out = run(state, cmd("withdraw", "m3"))
    assert [(o.kind, o.member_id) for o in out] == [("withdrawn", "m3")]


def test_a_member_who_comes_back_joins_the_end_of_the_line() -> None:
    state, _ = run(
        created(capacity=1),
        cmd("sign_up", "m1"),
        cmd("sign_up", "m2"),
        cmd("sign_up", "m3"),
        cmd("withdraw", "m2"),
        cmd("sign_up", "m2"),
    )
    assert [s.member_id for s in state.waiting()] == ["m3", "m2"]
    s = state.signup_of("m2")
    assert s is not None and s.version == 3


@pytest.mark.parametrize(
    ("setup", "command_", "code"),
    [
        ({}, lambda: cmd("sign_up", "m1", at=START), "signup_closed"),
        ({"unit_ids": ("unit_9",)}, lambda: cmd("sign_up", "m1"), "unit_not_allowed"),
        ({}, lambda: cmd("sign_up", "m1", member_community_id=C2), "activity_not_in_community"),
        ({}, lambda: cmd("withdraw", "m1"), "not_signed_up"),
        ({}, lambda: cmd("create", spec=spec()), "already_exists"),
        (
            {},
            lambda: cmd("sign_up", "m1", actor_role="organizer", actor_id=C1),
            "forbidden",
        ),
        ({}, lambda: cmd("cancel", actor_role="organizer", actor_id=C2), "forbidden"),
    ],
)
def test_refusals_carry_a_code_and_change_nothing(
    setup: dict[str, object], command_: object, code: str
) -> None:
    state = created(**setup)
    c = command_()  # type: ignore[operator]
    new, out = apply(state, c)
    r = refusal(out)
    assert r is not None and r.code == code
    assert new.activity == state.activity and new.signups == state.signups
    rej = rejection(c, out)
    assert rej is not None and rej.code == code


def test_already_signed_up_and_cancelled_activity_refuse() -> None:
    state, _ = run(created(), cmd("sign_up", "m1"))
    _, out = apply(state, cmd("sign_up", "m1"))
    assert refusal(out) is not None and refusal(out).code == "already_signed_up"  # type: ignore[union-attr]
    state, out = run(state, cmd("cancel"))
    assert [o.kind for o in out] == ["cancelled", "cancelled"]
    assert [s.status for s in changed_signups(out)] == ["cancelled"]
    _, out = apply(state, cmd("sign_up", "m2"))
    assert refusal(out) is not None and refusal(out).code == "activity_cancelled"  # type: ignore[union-attr]


def test_cancel_deadline_binds_placed_members_only() -> None:
    late = START - timedelta(minutes=90)
    state, _ = run(created(capacity=1), cmd("sign_up", "m1"), cmd("sign_up", "m2"))
    _, out = apply(state, cmd("withdraw", "m1", at=late))
    assert refusal(out) is not None and refusal(out).code == "cancel_closed"  # type: ignore[union-attr]
    _, out = apply(state, cmd("withdraw", "m2", at=late))
    assert [o.kind for o in out] == ["withdrawn"]


def test_a_redelivered_command_does_nothing() -> None:
    state = created()
    c = cmd("sign_up", "m1")
    state, out = apply(state, c)
    assert [o.kind for o in out] == ["placed"]
    again, out = apply(state, c)
    assert out == [] and again == state


def test_invalid_spec_is_refused() -> None:
    bad = spec(station_id=None)  # neither station nor grid
    _, out = apply(ActivityState(), cmd("create", spec=bad))
    assert refusal(out) is not None and refusal(out).code == "invalid_activity"  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", range(30))
def test_any_order_of_events_keeps_the_invariants(seed: int) -> None:
    """Random sign-ups and cancels, in any order: never more placed than the capacity, a free
    place never coexists with a waiting member before the start, each member at most once, and
    the waiting list stays in sign-up order."""
    rng = random.Random(seed)
    capacity = rng.randint(1, 4)
    state = created(capacity=capacity)
    members = [f"m{i}" for i in range(8)]
    for _ in range(60):
        m = rng.choice(members)
        state, _ = apply(state, cmd(rng.choice(["sign_up", "sign_up", "withdraw"]), m))
        placed, waiting = state.placed(), state.waiting()
        assert len(placed) <= capacity
        assert not (waiting and len(placed) < capacity)
        assert len({s.member_id for s in state.signups}) == len(state.signups)
        assert [s.seq for s in waiting] == sorted(s.seq for s in waiting)
        assert state.activity is not None
        assert (state.activity.placed, state.activity.waiting) == (len(placed), len(waiting))


def test_parse_rule_and_its_errors() -> None:
    r = parse_rule("every Saturday 09:00-11:00")
    assert (r.weekday, r.start.hour, r.end.hour) == (6, 9, 11)
    for bad in ("every day 9:00-10:00", "saturday 9-10", "every saturday 11:00-09:00"):
        with pytest.raises(ValueError, match="recurrence"):
            parse_rule(bad)


def test_recurring_slots_are_deterministic_and_local() -> None:
    rule = parse_rule("every saturday 09:00-11:00")
    after = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # a Monday
    a = generate("rule_x", rule, spec(), after, 4, timedelta(hours=1), timedelta(hours=2))
    b = generate("rule_x", rule, spec(), after, 4, timedelta(hours=1), timedelta(hours=2))
    assert [x[0] for x in a] == [x[0] for x in b]
    assert len({x[0] for x in a}) == 4
    first = a[0][1]
    local = first.starts_at.astimezone(LOCAL_TZ)
    assert (local.isoweekday(), local.hour, local.day) == (6, 9, 5)
    assert first.starts_at.tzinfo == UTC
    assert first.signup_deadline == first.starts_at - timedelta(hours=1)
    assert a[0][0] == slot_id("rule_x", local.date())
    # Another rule, the same dates: other slots.
    c = generate("rule_y", rule, spec(), after, 4, timedelta(hours=1), timedelta(hours=2))
    assert not {x[0] for x in a} & {x[0] for x in c}


def test_occurrences_skip_a_slot_already_started_today() -> None:
    rule = parse_rule("every saturday 09:00-11:00")
    during = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)  # Saturday 09:30 local
    (start, _), *_ = occurrences(rule, during, 1)
    assert start.astimezone(LOCAL_TZ).day == 12


# ---- slot reminders and the nudge (services.reminders) --------------------------------------


def test_slot_reminders_the_day_before_and_the_hour_before_once_each() -> None:
    from services.reminders import Recipient, SlotPlace, slot_moment, slot_reminders, weekly_nudges

    assert slot_moment(START - timedelta(hours=25), START) is None
    assert slot_moment(START - timedelta(hours=24), START) == "day"
    assert slot_moment(START - timedelta(minutes=61), START) == "day"
    assert slot_moment(START - timedelta(minutes=60), START) == "hour"
    assert slot_moment(START, START) is None  # started: dropped
    place = SlotPlace("act_1", "楼道清理", "南关党群服务站", START, C1, "m1", "刘洋")
    other = SlotPlace("act_1", "楼道清理", "南关党群服务站", START, C1, "m2", "陈晨")
    day = slot_reminders(START - timedelta(hours=20), [place, other], {"m2"})
    assert [n.recipient_id for n in day] == ["m1"]
    n = day[0]
    assert n.kind == "slot_reminder" and "12月5日（周六）09:00" in n.body
    assert "南关党群服务站" in n.body and n.title == "活动提醒：明天有服务"
    # Decided again later the same day: the same notification (its id), so the inbox keeps one.
    again = slot_reminders(START - timedelta(hours=3), [place], set())
    assert again[0].notification_id == n.notification_id
    hour = slot_reminders(START - timedelta(minutes=30), [place], set())
    assert hour[0].notification_id != n.notification_id and hour[0].title == "活动即将开始"

    # The Thursday nudge skips a member signed up for a slot this week.
    thursday_evening = datetime(2026, 12, 3, 11, 0, tzinfo=UTC)  # 19:00 in Shanghai
    people = [Recipient("m1", "刘洋"), Recipient("m2", "陈晨")]
    nudged = weekly_nudges(thursday_evening, C1, "南关社区", people, set())
    assert [x.recipient_id for x in nudged] == ["m1", "m2"]
    nudged = weekly_nudges(
        thursday_evening, C1, "南关社区", people, set(), signed_up=frozenset({"m1"})
    )
    assert [x.recipient_id for x in nudged] == ["m2"]


def test_attendance_from_sessions() -> None:
    from services.activities import Presence, attendance

    state, _ = run(created(), cmd("sign_up", "m1"), cmd("sign_up", "m2"))
    a = state.activity
    assert a is not None
    s1 = state.signup_of("m1")
    assert s1 is not None

    def at(station: str, start_min: int, end_min: int | None, status: str = "closed") -> Presence:
        end = START + timedelta(minutes=end_min) if end_min is not None else None
        return Presence(station, C1, START + timedelta(minutes=start_min), end, status, False)

    after = START + timedelta(hours=3)
    assert attendance(a, s1, [at("st_1", 10, 70)], after) == "attended"
    assert attendance(a, s1, [at("st_1", -20, None, "open")], after) == "attended"
    assert attendance(a, s1, [at("st_2", 10, 70)], after) == "no_show"  # another station
    assert attendance(a, s1, [at("st_1", 10, 70, "rejected")], after) == "no_show"
    assert attendance(a, s1, [at("st_1", -200, -100)], after) == "no_show"  # before the slot
    assert attendance(a, s1, [], START) == "pending"
    waiting = s1.model_copy(update={"status": "waiting"})
    assert attendance(a, waiting, [], after) is None


def test_a_grid_slot_is_attended_at_any_station_of_its_community() -> None:
    """Courtyard work (a level-5 grid) has no QR code of its own: a session at any station of
    the slot's community proves it, another community's station does not; the proof names the
    station (the roster shows it)."""
    from services.activities import Presence, attendance, proof

    state, _ = run(
        created(station_id=None, grid_id="grid_5_1"), cmd("sign_up", "m1"), cmd("sign_up", "m2")
    )
    a = state.activity
    s1 = state.signup_of("m1")
    assert a is not None and s1 is not None

    def at(station: str, community: str, start_min: int, voided: bool = False) -> Presence:
        start = START + timedelta(minutes=start_min)
        return Presence(station, community, start, start + timedelta(hours=1), "closed", voided)

    after = START + timedelta(hours=3)
    assert attendance(a, s1, [at("st_7", C1, 15)], after) == "attended"
    assert attendance(a, s1, [at("st_9", C2, 15)], after) == "no_show"  # another community
    assert attendance(a, s1, [at("st_7", C1, 15, voided=True)], after) == "no_show"
    assert attendance(a, s1, [at("st_7", C1, 300)], after) == "no_show"  # after the slot
    # Two sessions in the slot: the first one proves it.
    p = proof(a, s1, [at("st_8", C1, 60), at("st_9", C2, 0), at("st_7", C1, 10)])
    assert p is not None and p.station_id == "st_7"
    assert proof(a, s1, [at("st_9", C2, 0)]) is None


def test_the_demo_month_of_slots() -> None:
    """The demo county's month: every community's Saturday fixed service day and Wednesday
    slot, some Saturdays full with a waiting list, places given back and promoted, no-shows;
    the agent's rules accept every command as planned; a re-plan is the same commands."""
    from services.demo.county import generate, slice_county
    from services.demo.slots import plan_slots

    county = generate(7)
    county = slice_county(county, tuple(c.key for c in county.communities[:3]), 400)
    ids = {k: k for k in (*(u.key for u in county.units), *(c.key for c in county.communities))}
    ids |= {s.key: s.key for s in county.stations} | {m.key: m.key for m in county.members}
    now = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    plan = plan_slots(county, ids, now, 7)
    assert plan.slots == 3 * 8  # 4-5 Saturdays and Wednesdays in the 4 weeks around now
    again = plan_slots(county, ids, now, 7)
    assert [c.event_id for c in again.commands] == [c.event_id for c in plan.commands]
    states: dict[str, ActivityState] = {}
    kinds: list[str] = []
    for c in plan.commands:
        state, out = apply(states.get(c.activity_id, ActivityState()), c)
        states[c.activity_id] = state
        assert refusal(out) is None, out
        kinds += [o.kind for o in out]
    assert {"created", "placed", "waiting", "withdrawn", "promoted"} <= set(kinds)
    for st in states.values():
        assert st.activity is not None
        assert len(st.placed()) <= st.activity.capacity
        assert st.activity.starts_at.astimezone(LOCAL_TZ).isoweekday() in (3, 6)
    assert any(st.waiting() for st in states.values())
    assert plan.no_shows > 0 and plan.scans
    placed_past = {
        (st.activity.station_id, s.member_id)
        for st in states.values()
        if st.activity is not None and st.activity.ends_at <= now
        for s in st.placed()
    }
    assert {(s.station_key, s.member_key) for s in plan.scans} <= placed_past
    assert all(c.occurred_at <= now for c in plan.commands)


# ---- service notices: a cancelled slot, a promotion (通知) ----------------------------------


def judged(
    state: ActivityState, c: ActivityCommand
) -> tuple[ActivityState, list[NotificationCreated]]:
    """Applies one command as the agent does and returns what it would notify."""
    new, out = apply(state, c)
    return new, list(notices(state, new, c, out))


def test_a_cancelled_slot_notifies_every_member_placed_or_waiting_once() -> None:
    state, _ = run(
        created(capacity=1),
        cmd("sign_up", "m1"),
        cmd("sign_up", "m2"),
        cmd("sign_up", "m3"),
        cmd("withdraw", "m3"),
    )
    cancel = cmd("cancel", reason="大风天气预警，暂停户外服务")
    after, sent = judged(state, cancel)
    by = {n.recipient_id: n for n in sent}
    # m3 withdrew before: not told; m1 placed, m2 waiting: told, each in their words.
    assert set(by) == {"m1", "m2"}
    assert {n.kind for n in by.values()} == {"slot_cancelled"}
    assert by["m1"].title == "活动取消通知"
    assert "您报名的「固定服务日」（12月5日（周六）09:00-11:00）已由社区取消" in by["m1"].body
    assert "原因：大风天气预警" in by["m1"].body
    assert by["m2"].body.startswith("您候补的「固定服务日」")
    assert all(n.week == "2026-W49" and n.community_id == C1 for n in by.values())
    # The same cancel redelivered: nothing; a second cancel (a retry with a new id): refused,
    # nothing. The ids are derived, so even a re-judged copy would be the same notification.
    assert judged(after, cancel)[1] == []
    _, more = judged(after, cmd("cancel"))
    assert more == [] and refusal(apply(after, cmd("cancel"))[1]) is not None
    _, replayed = judged(state, cancel)
    assert [n.notification_id for n in replayed] == [n.notification_id for n in sent]
    # Without a reason, no reason is quoted.
    _, plain = judged(state, cmd("cancel"))
    assert all("原因" not in n.body for n in plain)


def test_a_promotion_notifies_the_promoted_member_with_the_cancel_deadline() -> None:
    state, _ = run(created(capacity=1), cmd("sign_up", "m1"), cmd("sign_up", "m2"))
    _, sent = judged(state, cmd("withdraw", "m1"))
    (n,) = sent
    assert (n.kind, n.recipient_id, n.title) == ("slot_promoted", "m2", "候补转正通知")
    # Cancel deadline: two hours before 09:00 local.
    assert "您已由候补转为正式报名" in n.body and "12月5日 07:00前" in n.body
    # Nothing else notifies: a sign-up, a plain withdrawal, leaving the waiting list.
    s2, quiet = judged(created(capacity=1), cmd("sign_up", "m1"))
    assert quiet == []
    s2, quiet = judged(s2, cmd("sign_up", "m2"))
    assert quiet == []
    assert judged(s2, cmd("withdraw", "m2"))[1] == []


def test_a_member_promoted_twice_gets_two_notices() -> None:
    """Promoted, gave the place back, waited again, promoted again: two promotions, two ids."""
    state, _ = run(created(capacity=1), cmd("sign_up", "m1"), cmd("sign_up", "m2"))
    state, first = judged(state, cmd("withdraw", "m1"))
    state, _ = run(state, cmd("sign_up", "m1"), cmd("withdraw", "m2"), cmd("sign_up", "m2"))
    state, second = judged(state, cmd("withdraw", "m1"))
    assert [n.recipient_id for n in first + second] == ["m2", "m2"]
    assert first[0].notification_id != second[0].notification_id
