"""The persisted offset of the RocksDB store moves only over this worker's own contiguous
changelog records (streams/state_store.py, issue 16): a record another writer put in between
is read again at the next recovery instead of being skipped for good."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.stores.rocksdb import Store as RocksStore
from faust.types import TP
from rocksdict import Options, Rdict

from streams.state_store import StateStore, contiguous_end


@pytest.mark.parametrize(
    ("persisted", "written", "expected"),
    [
        (9, [10, 11, 12], 12),  # the usual batch: right after what the store holds
        (9, [12, 10, 11], 12),  # acknowledged in any order
        (9, [10, 12, 13], 10),  # 11 is another writer's: stop before it
        (9, [11, 12], None),  # 10 is another writer's: do not move at all
        (9, [8, 9], None),  # nothing new
        (None, [0, 1, 2], 2),  # a changelog this worker started
        (None, [5, 6], None),  # records before 5 were never in this store
        (-1, [0], 0),
    ],
)
def test_contiguous_end(persisted: int | None, written: list[int], expected: int | None) -> None:
    assert contiguous_end(persisted, written) == expected


class _Rocks(RocksStore):
    """faust's RocksDB store on one real database per partition, without an app: only what
    `StateStore` and the persisted offsets use."""

    def __init__(self, folder: Path) -> None:  # faust's own needs an app
        self._dbs: dict[int, Any] = {}
        self._folder = folder

    def _open_for_partition(self, partition: int) -> Any:
        return Rdict(str(self._folder / f"p{partition}.db"), options=Options(raw_mode=True))

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()


def test_a_record_another_worker_wrote_between_ours_is_not_skipped(tmp_path: Path) -> None:
    rocks = _Rocks(tmp_path)
    store = StateStore(SimpleNamespace(data=rocks))
    tp = TP("changelog", 3)
    try:
        # What recovery left: every record up to offset 9 in the store.
        rocks.set_persisted_offset(tp, 9)
        # This worker wrote offsets 10 and 11; 12 is another worker's; then 13 and 14 again.
        store.put(3, b"m1", b"mine")
        store.persisted("changelog", 3, [10, 11])
        assert rocks.persisted_offset(tp) == 11
        store.persisted("changelog", 3, [13, 14])
        # Before the fix the offset jumped to 14 and recovery on this folder never read 12.
        assert rocks.persisted_offset(tp) == 11
        assert store.get(3, b"m1") == b"mine"
        # Another partition's offsets are its own.
        store.persisted("changelog", 4, [0, 1])
        assert rocks.persisted_offset(TP("changelog", 4)) == 1
    finally:
        rocks.close()


def test_the_memory_store_has_no_persisted_offset() -> None:
    table = SimpleNamespace(data=SimpleNamespace(data={}))
    store = StateStore(table)
    store.put(0, b"k", b"v")
    store.persisted("changelog", 0, [0, 1])  # nothing to record: it is rebuilt at every start
    assert store.get(0, b"k") == b"v"
    assert table.data.data == {b"k": b"v"}
