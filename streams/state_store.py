"""A table's stored bytes by changelog partition, on faust's memory or RocksDB store (STATE_STORE).

The session agent applies a batch of events of several partitions at once, so it cannot go
through faust's table API: faust's RocksDB store picks the partition's database from the
*current event* (`faust.stores.rocksdb.Store._get/_set`), which in a batch is any event of it,
and its writes go to the store before Kafka acknowledged their changelog records. Here the
partition is named on every call, and `Outbox` (streams/agents/sessions.py) applies a batch's
writes only after Kafka acknowledged them, then records the changelog offsets they reached as
the store's persisted offsets: a worker restarted on the same DATA_DIR reads only the
changelog's tail (faust's recovery starts after the persisted offset), and a write never sits
in the local store without being in the changelog (which a re-applied batch would not write
again: its events change nothing the second time). The persisted offset moves only over a
contiguous run of this worker's own records (`contiguous_end`): a record another worker wrote
in between is read at the next recovery, never skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from faust.stores.rocksdb import Store as RocksStore
from faust.types import TP


class StateStore:
    def __init__(self, table: Any) -> None:
        self.table = table

    @property
    def _rocks(self) -> RocksStore | None:
        data = self.table.data
        return data if isinstance(data, RocksStore) else None

    def _dict(self) -> dict[bytes, bytes]:
        # faust's memory store: one dict for every partition (keys are unique across them).
        return self.table.data.data  # type: ignore[no-any-return]

    def get(self, partition: int, key: bytes) -> bytes | None:
        rocks = self._rocks
        if rocks is None:
            return self._dict().get(key)
        value = rocks._db_for_partition(partition).get(key)
        return bytes(value) if value is not None else None

    def put(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Sets (None: deletes) a key of the partition in the local store only."""
        rocks = self._rocks
        if rocks is None:
            if value is None:
                self._dict().pop(key, None)
            else:
                self._dict()[key] = value
            return
        db = rocks._db_for_partition(partition)
        if value is None:
            db.delete(key)
        else:
            db.put(key, value)

    def items(self, partition: int, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The partition's keys starting with `prefix`, with their values."""
        rocks = self._rocks
        if rocks is None:
            for key, value in list(self._dict().items()):
                if isinstance(key, bytes) and key.startswith(prefix):
                    yield key, value
            return
        for key, value in rocks._db_for_partition(partition).items(from_key=prefix):
            if not key.startswith(prefix):
                return
            yield bytes(key), bytes(value)

    def persisted(self, topic: str, partition: int, offsets: Iterable[int]) -> None:
        """The changelog records at `offsets` (this worker's writes, acknowledged) are in the
        local store: the persisted offset moves over them as far as they continue it."""
        rocks = self._rocks
        if rocks is not None:
            tp = TP(topic, partition)
            current = rocks.persisted_offset(tp)
            reached = contiguous_end(current, offsets)
            if reached is not None and (current is None or reached > current):
                rocks.set_persisted_offset(tp, reached)


def contiguous_end(persisted: int | None, written: Iterable[int]) -> int | None:
    """How far the persisted offset may move once this worker's records at `written` are in
    its local store: over the run of them that directly follows `persisted`, no further.

    The persisted offset says every record of the partition up to it is in the local store,
    and faust's recovery reads only after it. A record at an offset this worker did not write
    (between `persisted` and one of its own) came from another writer: a worker that owned the
    partition while this one, expelled from the group (a session timeout under load), was
    still finishing a batch. Moving past it would skip it at every later recovery on this
    folder: that key would keep this worker's older value for good, while a recovery from
    scratch (the memory store, an empty folder) reads the log's last value. So the offset
    stops before the first gap, and the next recovery reads from there: both writers'
    records, in log order. With no persisted offset (nothing recovered into this store), no
    run can be shown to start at the partition's beginning unless it starts at offset 0."""
    end = -1 if persisted is None else persisted
    for offset in sorted(set(written)):
        if offset <= end:
            continue
        if offset != end + 1:
            break
        end = offset
    if end == -1 or (persisted is not None and end == persisted):
        return None
    return end
