"""A rolling upgrade (issue 13; docs/upgrades.md): workers writing the previous state format and
workers writing the current one share the consumer group while partitions move between them,
and every member's sessions and hours come out as the scans make them.

Worker A (the stack's) writes format 3, as a worker of the previous release does
(STATE_WRITE_VERSION=3, the default until the fleet is upgraded); worker B writes format 4, whose
partition index is a key per member (services/partition_index.py). Partitions move A -> B when
B joins and B -> A when B stops, so A reads member states and partition indexes B wrote in
format 4 and B reads A's format 3. Three groups of members:

- N: check in while A is alone, check out once B shares the group (one hour);
- P: check in once B shares the group, check out after B left (one hour);
- M: check in two days ago and never check out: the clock (ticks sent by the test, not by
  the workers' timers) closes them as forgotten check-outs, credited SESSION_FORGOTTEN_CREDIT_H.
  The clock finds them only through the partition index, which B rewrote in format 4 for its
  partitions (a key per member) and A back in format 3 (one value): a misread index, or a
  member key left behind, would leave them open or close them twice.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services import topics
from services.events import CheckinScanned, ClockTicked, derived_id
from tests.support.net import free_port
from tests.support.stack import Stack, Worker

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

STACK_ENV = {
    # No timer ticks during the test (the first comes after an hour): the test sends the clock.
    "SESSION_TICK_S": "3600",
    "SESSION_FORGOTTEN_CREDIT_H": "1",
    "STATE_WRITE_VERSION": "3",
}
HOUR = 3600


def scan(member_id: str, action: str, at: datetime) -> CheckinScanned:
    cid = f"{action}-{at.isoformat()}"
    return CheckinScanned(
        event_id=derived_id("checkin", member_id, cid),
        occurred_at=at,
        member_id=member_id,
        station_id="st-upgrade",
        station_community_id="c-upgrade",
        unit_id="u-upgrade",
        member_community_id="c-upgrade",
        action=action,  # type: ignore[arg-type]
        client_event_id=cid,
        # Received when made (no late offline scan): the member's own clock stays at the scan,
        # so only the partition's clock can close a forgotten check-out.
        received_at=at,
    )


def publish(stack: Stack, scans: list[CheckinScanned]) -> None:
    publisher = stack.client.app.state.ctx.publisher  # type: ignore[attr-defined]
    publisher.send_many_sync([(topics.CHECKINS, s.member_id, s) for s in scans])


def tick(stack: Stack, now: datetime) -> None:
    topic = stack.settings.topic(topics.SESSION_CLOCK.name)
    p = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, api_version=(3, 9))
    for partition in range(topics.SESSION_CLOCK.partitions):
        t = ClockTicked(
            event_id=derived_id("tick", topic, str(partition), now.isoformat()),
            occurred_at=now,
            partition=partition,
        )
        p.send(topic, key=f"p{partition}".encode(), value=t.to_bytes(), partition=partition)
    p.flush()
    p.close()


def sessions(stack: Stack, members: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    rows = stack.client.app.state.ctx.warehouse.query(  # type: ignore[attr-defined]
        "SELECT member_id, status, credited_seconds, flags FROM sessions FINAL "
        "WHERE member_id IN %(m)s AND NOT voided ORDER BY member_id, start",
        {"m": members},
    )
    out: dict[str, list[tuple[Any, ...]]] = {m: [] for m in members}
    for r in rows:
        out[r[0]].append((r[1], r[2], tuple(r[3])))
    return out


def week_seconds(stack: Stack, members: list[str]) -> dict[str, int]:
    rows = stack.client.app.state.ctx.warehouse.query(  # type: ignore[attr-defined]
        "SELECT member_id, sum(credited_seconds) FROM member_weeks FINAL "
        "WHERE member_id IN %(m)s GROUP BY member_id",
        {"m": members},
    )
    return {m: int(s) for m, s in rows}


def wait_sessions(
    stack: Stack, want: dict[str, list[tuple[Any, ...]]], timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    got = sessions(stack, list(want))
    while got != want and time.monotonic() < deadline:
        time.sleep(0.5)
        got = sessions(stack, list(want))
    off = {m: got[m] for m in want if got[m] != want[m]}
    assert not off, f"members off (want {next(iter(want.values()))}): {off}"


def changelog(stack: Stack, table: str) -> dict[bytes, list[int | None]]:
    """Each key's record formats on a table's changelog, in log order (None: unversioned)."""
    topic = stack.settings.topic(f"volunteer-streams-{table}-changelog")
    c = KafkaConsumer(
        bootstrap_servers=stack.broker.bootstrap,
        api_version=(3, 9),
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    try:
        parts = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic) or ()]
        c.assign(parts)
        c.seek_to_beginning(*parts)
        ends = c.end_offsets(parts)
        out: dict[bytes, list[int | None]] = defaultdict(list)
        while any(c.position(tp) < ends[tp] for tp in parts):
            for records in c.poll(timeout_ms=1000).values():
                for r in records:
                    if r.key is None or r.value is None or r.key.startswith(b"applied-"):
                        continue
                    value = json.loads(r.value)
                    # Format 4's index entries (`o<n>:<member>`) are bare deadlines.
                    out[r.key].append(value.get("v") if isinstance(value, dict) else 4)
        return out
    finally:
        c.close()


def moved_back(formats: dict[bytes, list[int | None]]) -> list[bytes]:
    """Keys whose format-4 record was followed by a format-3 one: a state B wrote that A read
    (it rewrites a state only after applying an event to it) and wrote again."""
    return [k for k, vs in formats.items() if 4 in vs and 3 in vs[vs.index(4) :]]


def test_workers_writing_the_old_and_the_new_format_share_the_group(
    stack: Stack, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    n_members = [f"mem-up-n{i}-{tag}" for i in range(12)]
    p_members = [f"mem-up-p{i}-{tag}" for i in range(12)]
    m_members = [f"mem-up-m{i}-{tag}" for i in range(12)]
    now = datetime.now(UTC).replace(microsecond=0)
    forgotten_at = now - timedelta(hours=50)

    # 1. Worker A alone (format 3).
    publish(stack, [scan(m, "in", forgotten_at) for m in m_members])
    publish(stack, [scan(m, "in", now - timedelta(hours=3)) for m in n_members])
    wait_sessions(stack, {m: [("open", 0, ())] for m in m_members + n_members})

    # 2. Worker B joins (format 4): the group rebalances, B takes some partitions.
    settings_b = stack.settings.model_copy(
        update={"worker_web_port": free_port(), "data_dir": tmp_path}
    )
    worker_b = Worker(
        settings_b, tmp_path / "worker-b.log", {**STACK_ENV, "STATE_WRITE_VERSION": "4"}
    )
    worker_b.start()
    try:
        publish(stack, [scan(m, "out", now - timedelta(hours=2)) for m in n_members])
        publish(stack, [scan(m, "in", now - timedelta(minutes=90)) for m in p_members])
        wait_sessions(stack, {m: [("closed", HOUR, ())] for m in n_members})
        wait_sessions(stack, {m: [("open", 0, ())] for m in p_members})
        states = changelog(stack, "member-session-state-v2")
        assert any(4 in vs for vs in states.values()), "worker B wrote no state in format 4"
        assert any(3 in vs for vs in states.values())
        index = changelog(stack, "session-partition-index-v2")
        assert any(k.startswith(b"o") for k in index), "worker B wrote no index key per member"
    finally:
        # 3. Worker B leaves: its partitions (format 4) go back to worker A (format 3).
        worker_b.stop()

    publish(stack, [scan(m, "out", now - timedelta(minutes=30)) for m in p_members])
    # Past M's deadlines (the end of their local day, plus 4 h: at least 22 h ago) and before
    # any of P's (at least 4 h after their check-in), whichever of the two arrives first.
    tick(stack, now - timedelta(hours=3))
    wait_sessions(stack, {m: [("closed", HOUR, ())] for m in p_members})
    wait_sessions(stack, {m: [("auto_closed", HOUR, ("forgotten_checkout",))] for m in m_members})
    everyone = m_members + n_members + p_members
    assert week_seconds(stack, everyone) == dict.fromkeys(everyone, HOUR)

    # The partitions did move across formats, both ways: states and indexes B wrote in format
    # 4 were read by A and written again in format 3.
    assert moved_back(changelog(stack, "member-session-state-v2"))
    assert moved_back(changelog(stack, "session-partition-index-v2"))
