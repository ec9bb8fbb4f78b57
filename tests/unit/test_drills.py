"""The drills' pure parts (issue 18, issue 12 part 5): the storm's plan, the timeline read from
the workers' logs and the commit samples, the per-member reconciliation of what users read, and
the document's merge of rows from earlier runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.drills.__main__ import TABLE_HEAD, merge_rows
from bench.drills.reads import compare
from bench.drills.storm import (
    CYCLE,
    Event,
    Sample,
    StormPlan,
    commit_events,
    owners_at,
    parse_partitions,
    passed_at,
    worker_events,
)
from bench.drills.workload import make_plan, members_off

T0 = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def test_storm_cycle_returns_to_worker1_alone_and_kills_every_worker_it_started() -> None:
    alive = {1}
    for step in CYCLE:
        if step.action in ("join", "restart"):
            assert step.worker not in alive
            alive.add(step.worker)
        else:
            assert step.worker in alive
            alive.discard(step.worker)
        assert alive, "the group is never left empty"
    assert alive == {1}
    assert {s.worker for s in CYCLE if s.action == "kill"} == {1, 2}
    assert any(s.action == "leave" for s in CYCLE)


def test_storm_plan_pauses_jitter_around_the_interval_and_repeat_with_the_seed() -> None:
    a, b = StormPlan(6.0, seed=3), StormPlan(6.0, seed=3)
    steps = [a.next() for _ in range(20)]
    assert steps == [b.next() for _ in range(20)]
    assert all(4.2 <= pause <= 7.8 for pause, _ in steps)
    assert len({pause for pause, _ in steps}) > 1
    assert [s for _, s in steps[: len(CYCLE)]] == list(CYCLE)


def test_partitions_of_faust_assignment_cells() -> None:
    assert parse_partitions("{0-2}") == {0, 1, 2}
    assert parse_partitions("{0, 3, 5}") == {0, 3, 5}
    assert parse_partitions("{1, 3-4}") == {1, 3, 4}
    assert parse_partitions("{}") == frozenset()


LOG = """\
[2026-11-30 07:00:01,000] [11] [INFO] [^---Recovery]: Seek stream partitions to committed offsets.
[2026-11-30 07:00:02,500] [11] [INFO] [^--Consumer]: Setting newly assigned partitions
+Topic Partition Set---------+
| topic            | partitions |
+------------------+------------+
| checkins         | {0-2}      |
| session-clock    | {0-2}      |
+------------------+------------+
[2026-11-30 07:00:03,000] [11] [INFO] [^Worker]: Ready
[2026-11-30 07:00:04,000] [11] [INFO] [^---Fetcher]: something unrelated
[2026-11-30 07:00:09,000] [11] [INFO] [^--Consumer]: Setting newly assigned partitions
+Topic Partition Set---------+
| topic            | partitions |
| member-weeks     | {0-5}      |
"""


def test_worker_events_carry_time_and_checkins_partitions() -> None:
    ev = worker_events("worker1", LOG)
    assert [e.at.second for e in ev] == [1, 2, 3, 9]
    assert ev[1].partitions == frozenset({0, 1, 2}) and ev[1].what == "assigned checkins [0, 1, 2]"
    assert ev[3].partitions == frozenset()  # assigned, but no checkins partition
    assert "Ready" in ev[2].what and ev[2].partitions is None
    assert all(e.who == "worker1" for e in ev)


def test_an_assignment_to_a_stopping_worker_is_shown_but_owns_nothing() -> None:
    log = (
        "[2026-11-30 07:00:01,000] [9] [INFO] [^Worker]: Stopping... \n"
        "[2026-11-30 07:00:02,000] [9] [INFO] Setting newly assigned partitions \n"
        "| checkins         | {0-2}      |\n"
        "[2026-11-30 07:00:05,000] [9] [INFO] [^Worker]: Starting... \n"
        "[2026-11-30 07:00:06,000] [9] [INFO] Setting newly assigned partitions \n"
        "| checkins         | {1}      |\n"
    )
    ev = worker_events("worker3", log)
    assert ev[1].partitions == frozenset() and "while stopping" in ev[1].what
    assert owners_at(ev, 0, T0 + timedelta(seconds=3)) == []
    assert owners_at(ev, 1, T0 + timedelta(seconds=7)) == ["worker3"]


def test_owners_follow_the_latest_assignment_of_each_worker() -> None:
    joined = Event(T0 + timedelta(seconds=5), "worker2", "assigned", frozenset({2, 3}))
    ev = [*worker_events("worker1", LOG), joined]
    assert owners_at(ev, 1, T0 + timedelta(seconds=4)) == ["worker1"]
    assert owners_at(ev, 2, T0 + timedelta(seconds=6)) == ["worker1", "worker2"]
    assert owners_at(ev, 1, T0 + timedelta(seconds=10)) == []  # worker1 lost it at 07:00:09
    assert owners_at(ev, 1, T0) == []
    # A worker holds nothing after a revocation, a stop, a crash or the storm's SIGKILL.
    revoked = worker_events(
        "worker2",
        "[2026-11-30 07:00:06,000] [12] [INFO] Revoking previously assigned partitions\n",
    )
    assert revoked[0].partitions == frozenset()
    assert owners_at([*ev, *revoked], 2, T0 + timedelta(seconds=7)) == ["worker1"]
    killed = Event(T0 + timedelta(seconds=6), "storm", "worker2 SIGKILLed, lag 5")
    assert owners_at([*ev, killed], 3, T0 + timedelta(seconds=7)) == []
    assert owners_at([*ev, killed], 3, T0 + timedelta(seconds=5, milliseconds=500)) == ["worker2"]


def test_commit_timeline_and_the_moment_a_scan_was_committed() -> None:
    samples = [
        Sample(T0, {0: 100, 1: 50}, {0: 10, 1: 50}),
        Sample(T0 + timedelta(seconds=1), {0: 120, 1: 50}, {0: 10, 1: 50}),
        Sample(T0 + timedelta(seconds=2), {0: 130, 1: 60}, {0: 60, 1: 50}),
    ]
    assert samples[0].lag == 90 and samples[2].lag == 80
    ev = commit_events(samples)
    assert [(e.at.second, e.what.split()[0]) for e in ev] == [(0, "p0"), (0, "p1"), (2, "p0")]
    assert "10 -> 60" in ev[2].what
    assert passed_at(samples, 0, 10) == T0 + timedelta(seconds=2)
    assert passed_at(samples, 0, 9) == T0
    assert passed_at(samples, 0, 60) is None


def test_members_off_lists_every_difference_largest_first() -> None:
    off = members_off({"a": 100, "b": 100, "c": 5}, {"a": 100, "b": 28900, "d": 7})
    assert [(o.member_id, o.diff_seconds) for o in off] == [("b", 28800), ("d", 7), ("c", -5)]
    assert members_off({"a": 1}, {"a": 1}) == []


def test_reads_compare_hours_within_the_apis_rounding_and_sessions_exactly() -> None:
    truth = {"a": 3600 * 2 + 17, "b": 3600, "c": 1800}
    sessions = {"a": 2, "b": 1, "c": 1}
    ok = compare("x", truth, sessions, {"a": (2.0, 2), "b": (1.0, 1), "c": (0.5, 1)}, 1)
    assert ok.ok and ok.members == 3
    bad = compare("x", truth, sessions, {"a": (10.0, 1), "b": (1.0, 2)}, 1)
    assert [r.member_id for r in bad.off] == ["a", "c", "b"]
    assert abs(bad.doubled_h - (10 - 7217 / 3600)) < 1e-9
    assert round(bad.lost_h, 2) == 0.5  # c never read
    assert not bad.ok


def test_plan_knows_sessions_and_the_years_to_ask_for() -> None:
    plan = make_plan(["m1", "m2"], ["s"], sessions=3, now=T0)
    assert plan.sessions_of(minimum=timedelta(0)) == {"m1": 3, "m2": 3}
    # A session credited below the weekly minimum (30 minutes) is no service.
    lengths: dict[str, list[timedelta]] = {}
    opened: dict[str, datetime] = {}
    for s in plan.scans:
        if s.action == "in":
            opened[s.member_id] = s.at
        else:
            lengths.setdefault(s.member_id, []).append(s.at - opened[s.member_id])
    want = {m: sum(1 for x in xs if x >= timedelta(minutes=30)) for m, xs in lengths.items()}
    assert plan.sessions_of() == want
    short = make_plan(["m"], ["s"], sessions=60, now=T0)
    assert sum(short.sessions_of().values()) < sum(short.sessions_of(timedelta(0)).values())
    assert plan.years() == [2026]
    # 2027-01-01 (a Friday) belongs to ISO week-year 2026: both years are asked for.
    new_year = make_plan(["m"], ["s"], 3, datetime(2027, 1, 1, 12, tzinfo=UTC))
    assert new_year.years() == [2026, 2027]


def test_document_keeps_earlier_rows_of_drills_not_run_and_adds_the_reads_column() -> None:
    cols = TABLE_HEAD.splitlines()[0].count("|") - 1
    old = "| (a) worker killed | 150,000 | 1 | 1 / 1 | 0.00 | 0.00 | 30% | 1 | 1 | 1 | PASS | x |"
    old_g = "| (g) storm | 10 | 1 | 1 / 1 | 0.00 | 0.00 | 30% | 1 | 1 | 1 | FAIL | y |"
    new = "| (g) storm | 150,000 | 1 | 1 / 1 | 0.00 | 0.00 | equal | 30% | 1 | 1 | 1 | PASS | z |"
    quoted = old.replace("150,000", "1,000,000")  # a findings section quoting another run
    doc = f"# doc\n\n## Results\n\n{old}\n{old_g}\n\n## Findings\n\n{quoted}\n"
    lines, kept = merge_rows([new], doc)
    assert kept == ["a"]
    assert lines[1] == new
    assert lines[0].count("|") - 1 == cols
    assert lines[0].split("|")[7].strip() == "not checked (earlier run)"
    assert "| 150,000 |" in lines[0]
