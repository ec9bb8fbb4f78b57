"""Does faust's RocksDB store close the database of a revoked partition? (issue 16, `rocksclose`)

faust-streaming 0.15.3 `Store.revoke_partitions` pops the partition's `Rdict` from `_dbs` and
leaves `# db.close()` commented out (since faust-streaming/faust#96, which went back to
relying on `gc.collect()`; #82 had added the close). These tests run faust's own store on
real RocksDB files in this process and show what that means:

- with no other reference, popping the `Rdict` closes it (CPython frees it there and then):
  the LOCK is released, the files are closed, and the partition, assigned again, opens on the
  first try: no "lock hold by current process", no retry. The revoke itself needs no patch;
- the database stays open only while something else holds it: a live iterator over it does,
  and then faust's reopen retries once a second (30 times, then the store stops). The
  project's code keeps no handle (streams/state_store.py asks `_db_for_partition` on every
  call, and its `items` generator is consumed by its callers at once);
- what did keep a revoked partition's database open was faust opening it again: its recovery
  flushes buffered standby records after the rebalance, and `apply_changelog_batch` opens the
  database of every partition it writes. Fixed in streams/faust_fixes.py (records of a
  partition not assigned here are left to its next recovery), with a canary.

Whole workers, three of them, the third joining and leaving: tests/integration/
test_rocks_revoke.py.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.stores.rocksdb import Store as RocksStore
from faust.types import TP
from rocksdict import Options, Rdict

from streams import faust_fixes
from tests.support.stack import run_async

PARTITIONS = 3


def held_locks(folder: Path) -> set[str]:
    """The RocksDB databases under `folder` whose LOCK this process holds open (by name)."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)) and target.endswith("/LOCK"):
            out.add(Path(target).parent.name)
    return out


def open_files(folder: Path) -> int:
    """File descriptors this process holds on files under `folder` (LOCK, WAL, LOG, ...)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder))
        except OSError:
            continue
    return n


def opens_elsewhere(path: Path) -> str | None:
    """None if a second `Rdict` in this process can open `path` (RocksDB refuses one while the
    LOCK is held in the same process); else RocksDB's error."""
    try:
        other = Rdict(str(path), options=Options(raw_mode=True))
    except Exception as exc:
        return str(exc)
    other.close()
    return None


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Any, Any, str]]:
    """faust's own RocksDB store of a table, in a folder of its own (no broker is touched)."""
    app = faust.App(f"rocksclose-{tmp_path.name}", datadir=str(tmp_path), store="rocksdb://")
    table = app.Table(
        "state",
        partitions=PARTITIONS,
        # Small memtables and caches: a test, not a worker.
        options={"write_buffer_size": 1 << 20, "block_cache_size": 1 << 20},
    )
    data = table.data
    assert isinstance(data, RocksStore)
    yield data, table, table.changelog_topic.get_topic_name()
    run_async(data.stop())


def rebalance(data: Any, assigned: set[TP], revoked: set[TP], newly: set[TP]) -> None:
    async def go() -> None:
        # faust makes its db_lock on the loop it was built on: a fresh one for this loop.
        data.db_lock = asyncio.Lock()
        await data.on_rebalance(assigned, revoked, newly, generation_id=0)

    run_async(go())


def test_a_revoked_partition_s_database_is_closed_and_opens_again_on_the_first_try(
    store: tuple[Any, Any, str],
) -> None:
    data, _table, topic = store
    folder = data.path
    tps = {TP(topic, p) for p in range(PARTITIONS)}
    assert open_files(folder) == 0
    rebalance(data, tps, set(), tps)
    for p in range(PARTITIONS):
        data._db_for_partition(p).put(f"k{p}".encode(), f"v{p}".encode())
    names = {data.partition_path(p).name for p in range(PARTITIONS)}
    assert held_locks(folder) == names
    opened = open_files(folder)

    # Partition 1 moves away (another worker joined).
    gone = TP(topic, 1)
    rebalance(data, tps - {gone}, {gone}, set())
    assert 1 not in data._dbs
    assert held_locks(folder) == names - {data.partition_path(1).name}
    assert open_files(folder) < opened
    assert opens_elsewhere(data.partition_path(1)) is None  # the LOCK is free

    # It comes back (the other worker left): opened at once, its data where it was.
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    data.sleep = no_sleep
    rebalance(data, tps, set(), {gone})
    assert slept == []  # faust's retry loop never waited on a lock
    assert bytes(data._db_for_partition(1).get(b"k1")) == b"v1"
    assert held_locks(folder) == names
    back = open_files(folder)  # (a reopened database may hold its old WAL and a new one)

    # Many cycles leave nothing behind.
    for _ in range(5):
        rebalance(data, tps - {gone}, {gone}, set())
        rebalance(data, tps, set(), {gone})
    assert slept == []
    assert held_locks(folder) == names
    assert open_files(folder) == back


def test_a_reference_that_outlives_the_pop_keeps_the_database_open_and_faust_waits(
    store: tuple[Any, Any, str],
) -> None:
    """What a leak would cost, had one existed: the LOCK stays held, and the partition, back
    on the same worker, is retried once a second until the reference goes (faust gives up
    after 30 tries and stops the store)."""
    data, _table, topic = store
    tp = TP(topic, 2)
    rebalance(data, {tp}, set(), {tp})
    db = data._db_for_partition(2)
    db.put(b"a", b"1")
    items = db.items()  # an iterator holds the database (rocksdict: in Rust, not in Python)
    next(items)
    del db
    rebalance(data, set(), {tp}, set())
    error = opens_elsewhere(data.partition_path(2))
    assert error is not None and "lock hold by current process" in error

    # The reference goes after two retries: the third try opens it.
    holder = [items]
    del items
    slept: list[float] = []

    async def release_after_two(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            holder.clear()

    data.sleep = release_after_two
    rebalance(data, {tp}, set(), {tp})
    assert slept == [1.0, 1.0]
    assert bytes(data._db_for_partition(2).get(b"a")) == b"1"


def test_the_project_keeps_no_handle_on_a_partition_s_database(tmp_path: Path) -> None:
    """streams/state_store.py asks faust for the database on every call, and the index is
    read with its generator run to the end (services.partition_index.load): nothing of the
    session agent outlives a call, so a revoked partition's database is closed by faust's
    pop (the first test). If StateStore starts caching databases, revoke must close them."""
    from streams import state_store

    source = inspect.getsource(state_store.StateStore)
    assert source.count("._db_for_partition(partition)") >= 3
    assert "self._db" not in source and "self._dbs" not in source


# ---- faust's recovery opening a revoked partition again (streams/faust_fixes.py) -------------


def record(tp: TP, offset: int, key: bytes, value: bytes) -> Any:
    """A changelog record as faust's recovery buffers it (what `apply_changelog_batch` reads)."""
    message = SimpleNamespace(
        tp=tp, topic=tp.topic, partition=tp.partition, offset=offset, key=key, value=value
    )
    return SimpleNamespace(message=message)


def assign(data: Any, actives: set[TP], standbys: frozenset[TP] | set[TP] = frozenset()) -> None:
    """What the group's assignment says this worker has (faust's assignor, set directly)."""
    data.app.assignor.assigned_actives = lambda: set(actives)
    data.app.assignor.assigned_standbys = lambda: set(standbys)


@pytest.mark.parametrize("fixed", [False, True], ids=["faust", "fixed"])
def test_a_standby_record_flushed_after_the_revocation_does_not_reopen_the_database(
    store: tuple[Any, Any, str], fixed: bool
) -> None:
    """faust's recovery flushes its buffered standby records after the rebalance
    (`Recovery._restart_recovery`), and faust's `apply_changelog_batch` opened the database of
    a partition the rebalance had just taken away (seen in the three-worker test). Fixed, such
    records are left to the partition's next recovery, which reads them from the changelog."""
    data, _table, topic = store
    import streams.app  # noqa: F401  (installs streams.faust_fixes, as a worker does)

    def apply(store: Any, batch: list[Any], to_key: Any, to_value: Any) -> None:
        if fixed:  # the store's method as the worker has it
            store.apply_changelog_batch(batch, to_key, to_value)
        else:  # faust's own
            faust_fixes.ORIGINAL_APPLY_CHANGELOG_BATCH(store, batch, to_key, to_value)

    folder = data.path
    p0, p1 = TP(topic, 0), TP(topic, 1)
    assign(data, {p0}, {p1})
    rebalance(data, {p0, p1}, set(), {p0, p1})
    apply(data, [record(p1, 4, b"s", b"standby")], None, None)
    assert data.persisted_offset(p1) == 4
    # The rebalance takes partition 1 away entirely; faust closes its database.
    assign(data, {p0})
    rebalance(data, {p0}, {p1}, set())
    assert data.partition_path(1).name not in held_locks(folder)
    # Recovery restarts and flushes what it buffered before: a record of each partition.
    apply(data, [record(p0, 9, b"a", b"active"), record(p1, 5, b"s", b"late")], None, None)
    assert bytes(data._db_for_partition(0).get(b"a")) == b"active"
    reopened = data.partition_path(1).name in held_locks(folder)
    assert reopened is not fixed
    assert (1 in data._dbs) is not fixed
    assert (opens_elsewhere(data.partition_path(1)) is None) is fixed
    if fixed:
        # The partition comes back: its store says it holds offset 4, so its recovery reads
        # offset 5 from the changelog; nothing was skipped.
        assign(data, {p0, p1})
        rebalance(data, {p0, p1}, set(), {p1})
        assert data.persisted_offset(p1) == 4
        assert bytes(data._db_for_partition(1).get(b"s")) == b"standby"


def test_faust_still_flushes_recovery_buffers_into_databases_it_opens_on_demand() -> None:
    """Canary: the upstream code the fix relies on. When faust changes any of these, look at
    streams.faust_fixes.apply_changelog_batch again (and at faust-streaming/faust#96)."""
    from faust.tables.recovery import Recovery

    revoke = inspect.getsource(RocksStore.revoke_partitions)
    assert "self._dbs.pop(tp.partition, None)" in revoke
    assert "# db.close()" in revoke
    apply = inspect.getsource(faust_fixes.ORIGINAL_APPLY_CHANGELOG_BATCH)
    assert "self._db_for_partition(partition).write(batch)" in apply
    assert "self.set_persisted_offset(tp, offset)" in apply
    assert "self.flush_buffers" in inspect.getsource(Recovery._restart_recovery.fun)
    db_for = inspect.getsource(RocksStore._db_for_partition)
    assert "self._open_for_partition(partition)" in db_for


def test_the_fix_is_installed_by_the_app() -> None:
    import streams.app  # noqa: F401

    assert RocksStore.apply_changelog_batch is faust_fixes.apply_changelog_batch
