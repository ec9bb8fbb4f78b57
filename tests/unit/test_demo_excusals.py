"""The demo county's month of excused weeks (services.demo.excusals)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from services.demo.county import generate, slice_county
from services.demo.excusals import plan_excusals
from services.excused import Decision, check_weeks, status, week_name
from services.timeutil import LOCAL_TZ

NOW = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def _county_and_ids() -> tuple[object, dict[str, str]]:
    county = generate(7)
    county = slice_county(county, tuple(c.key for c in county.communities[:6]), 1200)
    ids = {k: k for k in (*(u.key for u in county.units), *(c.key for c in county.communities))}
    ids |= {m.key: m.key for m in county.members}
    return county, ids


def test_a_month_of_requests_most_approved_some_declined_the_last_pending() -> None:
    county, ids = _county_and_ids()
    plan = plan_excusals(county, ids, NOW, 7)  # type: ignore[arg-type]
    assert plan.requests > 20 and plan.approved > plan.declined > 0
    requests = [e for e in plan.events if e.action == "request"]
    decisions = {e.request_id: e for e in plan.events if e.action != "request"}
    assert len(requests) == plan.requests
    assert len(requests) > len(decisions)  # the current week's latest still wait
    this_week = week_name(NOW.astimezone(LOCAL_TZ).date())
    assert {r.weeks[0] for r in requests} <= {
        week_name((NOW - timedelta(weeks=n)).astimezone(LOCAL_TZ).date()) for n in range(4)
    }
    assert any(r.weeks[0] == this_week for r in requests)
    for r in requests:
        # Every request is one the API would have taken when it was made, by the member.
        assert check_weeks(r.weeks, r.occurred_at) == list(r.weeks)
        assert r.actor_role == "member" and r.actor_id == r.member_id
        assert r.occurred_at <= NOW
        d = decisions.get(r.request_id)
        if d is not None:
            assert d.occurred_at > r.occurred_at and d.actor_role == "organizer"
            assert d.actor_id == r.community_id
            assert (d.action == "decline") == bool(d.note)
            got, _ = status([Decision(d.action, d.occurred_at, d.event_id)])
            assert got == ("approved" if d.action == "approve" else "declined")
    assert len(Counter(r.reason for r in requests)) >= 3


def test_the_plan_is_the_same_on_a_rerun_and_skips_weeks_already_served() -> None:
    county, ids = _county_and_ids()
    plan = plan_excusals(county, ids, NOW, 7)  # type: ignore[arg-type]
    again = plan_excusals(county, ids, NOW, 7)  # type: ignore[arg-type]
    assert [e.event_id for e in again.events] == [e.event_id for e in plan.events]
    first = next(e for e in plan.events if e.action == "request")
    monday = datetime.fromisocalendar(int(first.weeks[0][:4]), int(first.weeks[0][6:]), 1)
    busy = {(first.member_id, monday.date())}
    served = plan_excusals(county, ids, NOW, 7, busy)  # type: ignore[arg-type]
    assert first.request_id not in {e.request_id for e in served.events}
