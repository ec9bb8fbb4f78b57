"""The session agent's tables on faust's RocksDB store (STATE_STORE=rocksdb; issue 16), the
partition index a key per member (state format 4):

- a worker restarted on its DATA_DIR finds its state in its local store, complete up to the
  changelog's end (the persisted offset is the last changelog record: nothing to re-read);
- a worker with an empty DATA_DIR that takes the partitions over rebuilds the state from the
  changelog;
- a worker whose local store is stale (another owned the partitions meanwhile) reads the
  changelog's tail from its persisted offset and carries on from the other's writes;
- through all three, the forgotten check-outs are found through the keyed index.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2
from rocksdict import Options, Rdict

from services import partition_index as pindex
from services import state_format
from services.sessions import MemberState, SessionRules, on_scan
from services.topics import CHECKINS, MEMBER_STATE_TABLE, PARTITION_INDEX_TABLE
from tests.integration.test_rolling_upgrade import HOUR, publish, scan, tick, wait_sessions
from tests.support.net import free_port
from tests.support.stack import Stack, Worker

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

STACK_ENV = {
    "SESSION_TICK_S": "3600",  # the test sends the clock
    "SESSION_FORGOTTEN_CREDIT_H": "1",
    "STATE_STORE": "rocksdb",
    "STATE_WRITE_VERSION": "4",
}
OFFSET_KEY = b"__faust\0offset__"


def local_dbs(data_dir: Path, table: str) -> dict[int, Path]:
    """The worker's RocksDB databases of a table, by partition (faust: `<table>-<p>.db`)."""
    out = {}
    for path in data_dir.rglob(f"*{table}-*.db"):
        out[int(path.name.rsplit("-", 1)[1].removesuffix(".db"))] = path
    return out


def read_db(path: Path) -> dict[bytes, bytes]:
    db = Rdict(str(path), options=Options(raw_mode=True))
    try:
        return {bytes(k): bytes(v) for k, v in db.items()}
    finally:
        db.close()


def changelog_ends(stack: Stack, table: str) -> dict[int, int]:
    topic = stack.settings.topic(f"volunteer-streams-{table}-changelog")
    c = KafkaConsumer(bootstrap_servers=stack.broker.bootstrap, api_version=(3, 9))
    try:
        parts = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic) or ()]
        return {tp.partition: end for tp, end in c.end_offsets(parts).items()}
    finally:
        c.close()


def test_state_lives_in_rocksdb_survives_a_restart_and_moves_with_its_partitions(
    stack: Stack, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    a = [f"mem-rk-a{i}-{tag}" for i in range(10)]  # in before the restart, out after it
    c = [f"mem-rk-c{i}-{tag}" for i in range(10)]  # in on A, out on B (fresh store)
    d = [f"mem-rk-d{i}-{tag}" for i in range(10)]  # in on B, out on A (stale store)
    m = [f"mem-rk-m{i}-{tag}" for i in range(10)]  # in two days ago, never out: the clock
    now = datetime.now(UTC).replace(microsecond=0)
    publish(stack, [scan(x, "in", now - timedelta(hours=50)) for x in m])
    publish(stack, [scan(x, "in", now - timedelta(hours=5)) for x in a])
    publish(stack, [scan(x, "in", now - timedelta(hours=4)) for x in c])
    wait_sessions(stack, {x: [("open", 0, ())] for x in a + c + m})

    # 1. Stopped, the worker's local store holds every state and index entry, persisted up to
    # the changelog's last record.
    stack.worker.stop()
    data_dir = stack.settings.data_dir
    for table in (MEMBER_STATE_TABLE, PARTITION_INDEX_TABLE):
        dbs = local_dbs(data_dir, table)
        assert dbs, f"no RocksDB database of {table} under {data_dir}"
        ends = changelog_ends(stack, table)
        held: dict[bytes, bytes] = {}
        for partition, path in dbs.items():
            content = read_db(path)
            if ends.get(partition):
                assert int(content[OFFSET_KEY]) == ends[partition] - 1, (table, partition)
            held.update(content)
        if table == MEMBER_STATE_TABLE:
            assert {x.encode() for x in a + c + m} <= held.keys()
        else:
            keyed = {k.split(b":", 1)[1].decode() for k in held if k[:1] == b"o" and b":" in k}
            assert set(a + c + m) <= keyed  # every open session a key of its own

    # 2. Restarted on the same folder: A's check-outs pair with the check-ins before.
    stack.worker.start()
    publish(stack, [scan(x, "out", now - timedelta(hours=4)) for x in a])
    wait_sessions(stack, {x: [("closed", HOUR, ())] for x in a})

    # 3. The partitions move to a worker with an empty folder: rebuilt from the changelog.
    stack.worker.stop()
    b_settings = stack.settings.model_copy(
        update={"worker_web_port": free_port(), "data_dir": tmp_path / "b"}
    )
    (tmp_path / "b").mkdir()
    worker_b = Worker(b_settings, tmp_path / "worker-b.log", STACK_ENV)
    worker_b.start()
    try:
        publish(stack, [scan(x, "out", now - timedelta(hours=3)) for x in c])
        publish(stack, [scan(x, "in", now - timedelta(hours=3)) for x in d])
        wait_sessions(stack, {x: [("closed", HOUR, ())] for x in c})
        wait_sessions(stack, {x: [("open", 0, ())] for x in d})
    finally:
        worker_b.stop()

    # 4. Back to the first worker, whose store misses what B wrote: it reads the changelog's
    # tail from its persisted offset; D's check-outs and the clock find B's states and keys.
    stack.worker.start()
    publish(stack, [scan(x, "out", now - timedelta(hours=2)) for x in d])
    tick(stack, now - timedelta(hours=1))
    wait_sessions(stack, {x: [("closed", HOUR, ())] for x in d})
    wait_sessions(stack, {x: [("auto_closed", HOUR, ("forgotten_checkout",))] for x in m})
    # C's sessions, closed by B, were not closed again from A's stale copy.
    wait_sessions(stack, {x: [("closed", HOUR, ())] for x in c})
    # Every session closed: no member key is left in the index.
    stack.worker.stop()
    left = set()
    for path in local_dbs(data_dir, PARTITION_INDEX_TABLE).values():
        left |= {k for k in read_db(path) if k[:1] == b"o" and tag.encode() in k}
    stack.worker.start()
    assert not left, left
    assert pindex.member_key(0, "x") == b"o0:x"


def same_partition_members(tag: str, n: int = 2) -> tuple[int, list[str]]:
    """`n` member ids whose scans (keyed by member id, Kafka's default partitioner) and hence
    states land in the same partition."""
    by_partition: dict[int, list[str]] = {}
    for i in range(1000):
        member_id = f"mem-rk-f{i}-{tag}"
        p = (murmur2(member_id.encode()) & 0x7FFFFFFF) % CHECKINS.partitions
        by_partition.setdefault(p, []).append(member_id)
        if len(by_partition[p]) == n:
            return p, by_partition[p]
    raise AssertionError("no two members in one partition")


def test_a_record_another_worker_wrote_in_between_is_not_skipped_after_a_restart(
    stack: Stack,
) -> None:
    """Two writers in one changelog partition: a worker expelled from the group (a session
    timeout under load) still finishing a batch while another owns the partition. The
    persisted offset must not pass the other's record, or every later recovery on this folder
    skips it (the rebalance-guarantee test's failure with this store)."""
    tag = uuid.uuid4().hex[:6]
    partition, (x, z) = same_partition_members(tag)
    now = datetime.now(UTC).replace(microsecond=0)
    publish(stack, [scan(x, "in", now - timedelta(hours=5))])
    wait_sessions(stack, {x: [("open", 0, ())]})

    # The other writer's state of X (its check-out applied), in X's changelog partition.
    rules = SessionRules.from_settings(stack.settings)
    theirs = MemberState(member_id=x)
    for action, at in (("in", now - timedelta(hours=5)), ("out", now - timedelta(hours=4))):
        theirs, _ = on_scan(theirs, scan(x, action, at), rules, None)
    foreign = state_format.dump_member(theirs, 4)
    topic = stack.settings.topic(f"volunteer-streams-{MEMBER_STATE_TABLE}-changelog")
    producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, api_version=(3, 9))
    producer.send(topic, key=x.encode(), value=foreign, partition=partition).get(timeout=30)
    producer.close()

    # This worker writes Z's state after it, in the same partition.
    publish(stack, [scan(z, "in", now - timedelta(hours=3))])
    wait_sessions(stack, {z: [("open", 0, ())]})

    # Restarted on its folder, it reads the changelog from its persisted offset: X's value is
    # the log's last one, the other writer's, as a recovery from scratch would have it.
    data_dir = stack.settings.data_dir
    stack.worker.stop()
    stack.worker.start()
    stack.worker.stop()
    try:
        held = read_db(local_dbs(data_dir, MEMBER_STATE_TABLE)[partition])
        assert held[x.encode()] == foreign
        assert z.encode() in held
        assert int(held[OFFSET_KEY]) == changelog_ends(stack, MEMBER_STATE_TABLE)[partition] - 1
    finally:
        stack.worker.start()
