"""Every scan applied once, whatever faust delivers around a rebalance (issue 18; streams/ledger.py).

Both races are forced, not waited for: the worker drops the first delivery of one scan (as
faust's streams drop a message fetched before a rebalance), and a batch is held in flight while
a second worker joins the group. Each member's sessions must come out exactly as the scans make
them: one session of one hour per check-in/check-out pair, none closed by the next check-in.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services import topics
from services.events import CheckinScanned, derived_id
from tests.support.net import free_port
from tests.support.stack import Stack, Worker

# Both state stores (STATE_STORE; streams/state_store.py): the guarantee must not depend on
# where the tables live. Each variant gets a stack of its own (the fixture is per module).
pytestmark = [
    pytest.mark.kafka,
    pytest.mark.clickhouse,
    pytest.mark.slow,
    pytest.mark.parametrize(
        "stack",
        [{"STATE_STORE": "memory"}, {"STATE_STORE": "rocksdb"}],
        ids=["memory", "rocksdb"],
        indirect=True,
        scope="module",
    ),
]

HOLD_FILE = Path(f"/tmp/hold-{uuid.uuid4().hex}")
STACK_ENV = {
    # The first message at offset 3 of any checkins partition is dropped once: the first
    # test's member is alone on the topic when it publishes, so it is that member's scan.
    "SESSION_FAULT_SKIP": "checkins:*:3",
    "SESSION_FAULT_HOLD_FILE": str(HOLD_FILE),
    "SESSION_FAULT_HOLD_S": "60",
}


def pairs(member_id: str, n: int, first: datetime, tag: str) -> list[CheckinScanned]:
    """n sessions of one hour, three hours apart: in at t, out at t + 1 h."""
    out = []
    for i in range(n):
        for action, at in (("in", first + timedelta(hours=3 * i)), ("out", None)):
            at = at or first + timedelta(hours=3 * i + 1)
            cid = f"{tag}-{i}-{action}"
            out.append(
                CheckinScanned(
                    event_id=derived_id("checkin", member_id, cid),
                    occurred_at=at,
                    member_id=member_id,
                    station_id="st-ledger",
                    station_community_id="c-ledger",
                    unit_id="u-ledger",
                    member_community_id="c-ledger",
                    action=action,  # type: ignore[arg-type]
                    client_event_id=cid,
                    received_at=datetime.now(UTC),
                )
            )
    return out


def publish(stack: Stack, scans: list[CheckinScanned]) -> None:
    publisher = stack.client.app.state.ctx.publisher  # type: ignore[attr-defined]
    publisher.send_many_sync([(topics.CHECKINS, s.member_id, s) for s in scans])


def sessions(stack: Stack, member_ids: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    rows = stack.client.app.state.ctx.warehouse.query(  # type: ignore[attr-defined]
        "SELECT member_id, status, credited_seconds, flags, checkin_event_id, checkout_event_id "
        "FROM sessions FINAL WHERE member_id IN %(m)s AND NOT voided ORDER BY member_id, start",
        {"m": member_ids},
    )
    out: dict[str, list[tuple[Any, ...]]] = {m: [] for m in member_ids}
    for r in rows:
        out[r[0]].append(tuple(r[1:]))
    return out


def wait_exact(stack: Stack, expected: dict[str, list[CheckinScanned]], timeout: float) -> None:
    """Until every member has one closed one-hour session per pair naming both its scans; on
    timeout, the members that differ with what they have."""
    want = {
        m: sorted((s[0].event_id, s[1].event_id) for s in zip(sc[::2], sc[1::2], strict=True))
        for m, sc in expected.items()
    }

    def off() -> dict[str, Any]:
        got = sessions(stack, list(expected))
        bad = {}
        for m, rows in got.items():
            ok = all(r[0] == "closed" and r[1] == 3600 and not r[2] for r in rows)
            if not ok or sorted((r[3], r[4]) for r in rows) != want[m]:
                bad[m] = rows
        return bad

    deadline = time.monotonic() + timeout
    bad = off()
    while bad and time.monotonic() < deadline:
        time.sleep(0.5)
        bad = off()
    assert not bad, f"members off: {bad}"


def metric(port: int, name: str, label: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.findall(rf"^{name}_total\{{[^}}]*{label}[^}}]*\}} (\S+)$", text, re.M)
    return sum(float(v) for v in found)


def test_a_scan_faust_skipped_is_read_directly_and_applied(stack: Stack) -> None:
    member = f"mem-skip-{uuid.uuid4().hex[:8]}"
    scans = pairs(member, 4, datetime.now(UTC) - timedelta(hours=20), "skip")
    # Offset 3 is the second check-out: lost, the second session would be closed by the third
    # check-in two hours later (3 h credited, flagged) instead of one hour.
    publish(stack, scans)
    wait_exact(stack, {member: scans}, timeout=60)
    port = stack.settings.worker_web_port
    assert metric(port, "volunteer_agent_holes", 'topic="checkins"') >= 1
    log = stack.worker.log_path.read_text()
    assert "fault injection: dropped" in log and "were not delivered (3-3)" in log


def test_a_rebalance_while_a_batch_is_in_flight_applies_each_scan_once(
    stack: Stack, tmp_path: Path
) -> None:
    first = datetime.now(UTC) - timedelta(hours=30)
    members = [f"mem-reb-{i}-{uuid.uuid4().hex[:6]}" for i in range(24)]
    expected = {m: pairs(m, 2, first, "w1") for m in members}
    log1 = stack.worker.log_path
    mark = len(log1.read_bytes())

    HOLD_FILE.touch()
    try:
        publish(stack, [s for sc in expected.values() for s in sc])
        wait_for_log(log1, mark, "fault injection: holding a batch", 30)
        # A second worker joins: the group rebalances while worker 1's batch is held.
        settings2 = stack.settings.model_copy(
            update={"worker_web_port": free_port(), "data_dir": tmp_path}
        )
        # The same store as worker 1 (the settings' environment does not carry it).
        env2 = {**STACK_ENV, "SESSION_FAULT_SKIP": "", "STATE_STORE": stack.settings.state_store}
        worker2 = Worker(settings2, tmp_path / "worker2.log", env2)
        # Its start waits for its assignment, which waits for the batch held here.
        starting = threading.Thread(target=worker2.start)
        starting.start()
        wait_for_log(log1, mark, "Wait for streams...", 60)
    finally:
        HOLD_FILE.unlink(missing_ok=True)
    starting.join()
    # Worker 2 keeps its tables where this variant says: RocksDB databases in its own folder.
    rocks_dbs = list((tmp_path / "faust").rglob("*.db"))
    assert bool(rocks_dbs) == (stack.settings.state_store == "rocksdb"), rocks_dbs
    try:
        text = wait_for_log(log1, mark, "Executing _on_partitions_assigned", 60)
        # The revocation waited for the batch in flight, and the assignment came after it.
        order = [
            text.index("fault injection: holding a batch"),
            text.index("Wait for streams..."),
            text.index("fault injection: batch released"),
            text.index("Executing _on_partitions_assigned"),
        ]
        assert order == sorted(order), text[-4000:]

        # More scans while both work, then one of them dies mid-stream.
        for m in members:
            expected[m] += pairs(m, 2, first + timedelta(hours=6), "w2")
        publish(stack, [s for m in members for s in expected[m][4:]])
        wait_exact(stack, expected, timeout=90)
    finally:
        worker2.stop(kill=True)
    for m in members:
        expected[m] += pairs(m, 1, first + timedelta(hours=12), "w3")
    publish(stack, [s for m in members for s in expected[m][8:]])
    wait_exact(stack, expected, timeout=120)


def wait_for_log(path: Path, start: int, needle: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_bytes()[start:].decode(errors="replace")
        if needle in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not in {path}: {path.read_text()[-3000:]}")
