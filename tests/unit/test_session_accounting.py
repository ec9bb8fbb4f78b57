"""Every scan the pairing rules apply is named by exactly the sessions it made or joined.

The production reconciliation (services.reconcile) compares raw scans with the scan ids the
non-voided sessions name; these tests pin the rules' side of that contract, on fixture scans
and on generated scan lists delivered in any order.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.events import Event, SessionRecorded
from services.sessions import Kept, LateScan, MemberState, SessionRules, on_clock, on_scan
from tests.unit.test_sessions import at, run, scan

RULES = SessionRules()


def latest(out: list[Event]) -> dict[str, SessionRecorded]:
    """Each session's latest revision, as `sessions FINAL` holds it."""
    kept: dict[str, SessionRecorded] = {}
    for e in out:
        if isinstance(e, SessionRecorded):
            old = kept.get(e.session_id)
            if old is None or e.revision >= old.revision:
                kept[e.session_id] = e
    return kept


def named(records: dict[str, SessionRecorded]) -> list[str]:
    """Scan ids named by the live sessions, once per naming (a check-in that closed the session
    before it is named twice, as check-out and as check-in)."""
    ids: list[str] = []
    for r in records.values():
        if r.voided:
            continue
        ids.extend(i for i in (r.checkin_event_id, r.checkout_event_id) if i is not None)
        ids.extend(r.absorbed_event_ids)
    return ids


def test_a_double_tapped_checkin_is_absorbed_by_the_session_it_repeats() -> None:
    first, again = scan("in", at(9), event_id="in1"), scan("in", at(9, 1), event_id="in2")
    _, out = run(first, again, scan("out", at(11), event_id="out1"))
    (rec,) = latest(out).values()
    assert (rec.checkin_event_id, rec.checkout_event_id) == ("in1", "out1")
    assert rec.absorbed_event_ids == ["in2"]
    assert rec.credited_seconds == 2 * 3600


def test_a_double_tapped_checkout_is_absorbed_by_the_session_it_closed() -> None:
    _, out = run(
        scan("in", at(9), event_id="in1"),
        scan("out", at(11), event_id="out1"),
        scan("out", at(11, 1), event_id="out2"),
    )
    (rec,) = latest(out).values()
    assert rec.checkout_event_id == "out1"
    assert rec.absorbed_event_ids == ["out2"]


def test_a_checkin_again_at_the_same_station_is_absorbed_by_the_open_session() -> None:
    _, out = run(scan("in", at(9), event_id="in1"), scan("in", at(10), event_id="in2"))
    (rec,) = latest(out).values()
    assert rec.status == "open"
    assert rec.absorbed_event_ids == ["in2"]


def test_a_late_scan_moves_an_absorbed_scan_to_the_session_that_now_holds_it() -> None:
    # out2 is a double tap of out1 until a late check-in arrives between them: then out2 is
    # the check-out of a new session, and the first session's next revision no longer names it.
    state, out = run(
        scan("in", at(9), event_id="in1"),
        scan("out", at(11), event_id="out1"),
        scan("out", at(11, 1), event_id="out2"),
    )
    assert [r.absorbed_event_ids for r in latest(out).values()] == [["out2"]]
    state, more = on_scan(
        state, scan("in", at(11, 0) + timedelta(seconds=30), "st_a", "in2"), RULES
    )
    records = latest(out + more)
    by_checkin = {r.checkin_event_id: r for r in records.values()}
    assert by_checkin["in1"].absorbed_event_ids == []
    assert by_checkin["in2"].checkout_event_id == "out2"
    ids = named(records)
    assert sorted(ids) == ["in1", "in2", "out1", "out2"]


def test_records_written_before_the_field_read_as_naming_no_absorbed_scan() -> None:
    _, out = run(scan("in", at(9), event_id="in1"), scan("out", at(11), event_id="out1"))
    (rec,) = latest(out).values()
    payload = json.loads(rec.to_bytes())
    del payload["absorbed_event_ids"]
    old = SessionRecorded.model_validate(payload)
    assert old.absorbed_event_ids == []
    assert old.model_copy(update={"absorbed_event_ids": []}) == rec


def test_a_state_written_before_names_its_repeats_on_the_next_scan() -> None:
    """States saved by the previous rules hold records without absorbed scans: the next scan
    re-records the session that has one, so the warehouse learns it."""
    state, out = run(scan("in", at(9), event_id="in1"), scan("in", at(9, 1), event_id="in2"))
    (rec,) = latest(out).values()
    stale = rec.model_copy(update={"absorbed_event_ids": []})
    kept = state.sessions[rec.session_id]
    state = state.model_copy(
        update={
            "sessions": {
                rec.session_id: Kept.model_validate(
                    {**kept.model_dump(), "last": stale.model_dump()}
                )
            }
        }
    )
    reloaded = MemberState.model_validate_json(state.model_dump_json())
    _, more = on_scan(reloaded, scan("out", at(11), event_id="out1"), RULES)
    (again,) = latest(more).values()
    assert again.absorbed_event_ids == ["in2"]
    assert again.revision == rec.revision + 1


# --- the property, over generated scan lists ------------------------------------------------

_STEP_MINUTES = st.sampled_from([0, 1, 1, 2, 3, 30, 90, 200, 600, 1500])


@st.composite
def scan_lists(draw: st.DrawFn) -> list[tuple[int, str, str]]:
    """(minutes from the start, action, station): double taps, same-station re-check-ins,
    moves between stations, forgotten check-outs, anomalies; within 2.5 days, so no arrival
    order makes a scan older than the rules' horizon."""
    n = draw(st.integers(min_value=1, max_value=14))
    t = 0
    out = []
    for _ in range(n):
        t += draw(_STEP_MINUTES)
        out.append((t, draw(st.sampled_from(["in", "out"])), draw(st.sampled_from("ab"))))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=scan_lists(),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    redeliver=st.booleans(),
    tick_after=st.booleans(),
)
def test_the_live_sessions_name_every_applied_scan_and_only_those(
    plan: list[tuple[int, str, str]], seed: int, redeliver: bool, tick_after: bool
) -> None:
    base = at(8)
    scans = [
        scan(action, base + timedelta(minutes=m), station=f"st_{station}", event_id=f"e{i}")
        for i, (m, action, station) in enumerate(plan)
    ]
    order = list(scans)
    random.Random(seed).shuffle(order)
    if redeliver:
        order += order[: len(order) // 2]
    state, out, applied = MemberState(), [], set()
    for s in order:
        try:
            state, emitted = on_scan(state, s, RULES)
        except LateScan:
            continue
        applied.add(s.event_id)
        out.extend(emitted)
    if tick_after:
        state, emitted = on_clock(state, "t1", base + timedelta(days=4), RULES)
        out.extend(emitted)
    records = latest(out)
    ids = named(records)
    assert set(ids) == applied
    # A scan is named twice only as the check-in that closed the session before it (a move to
    # another station); an absorbed scan is named by its one session and nowhere else.
    absorbed = [i for r in records.values() if not r.voided for i in r.absorbed_event_ids]
    assert len(absorbed) == len(set(absorbed))
    paired = [
        i
        for r in records.values()
        if not r.voided
        for i in (r.checkin_event_id, r.checkout_event_id)
        if i is not None
    ]
    assert not set(absorbed) & set(paired)
    for i in {i for i in paired if paired.count(i) > 1}:
        closers = [r for r in records.values() if not r.voided and r.checkout_event_id == i]
        assert len(closers) == 1 and "closed_by_next_checkin" in closers[0].flags
