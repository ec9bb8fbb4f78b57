"""services.partition_index: the index of open sessions a key per member (state format 4), what a
batch writes, and the switch between the one-value layout (format 3, what the previous release
reads) and the keyed one in both directions, as a rolling upgrade or its rollback does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services import partition_index as pindex
from services import state_format

P = 3
CLOCK = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


class Store:
    """A partition's stored keys, as the changelog (compacted) and the local store hold them."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.written: list[list[tuple[bytes, bytes | None]]] = []

    def load(self) -> pindex.Stored:
        return pindex.load(P, self.data.get(pindex.head_key(P)), self.data.items())

    def save(self, clock: datetime | None, members: dict[str, int], version: int) -> pindex.Stored:
        before = self.load()
        writes = pindex.writes(P, before, clock, members, version)
        self.written.append(writes)
        for key, value in writes:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value
        # What the agent keeps parsed is what a fresh read of the store gives.
        kept = pindex.after(P, before, writes, clock, members, version)
        fresh = self.load()
        assert (kept.clock, kept.members, kept.layout) == (fresh.clock, fresh.members, fresh.layout)
        return fresh


def test_format_4_writes_only_the_members_that_changed() -> None:
    store = Store()
    members = {f"mem_{i}": 1764561600 for i in range(1000)}
    store.save(CLOCK, members, 4)
    assert len(store.written[-1]) == 1001  # every member and the head, once
    # One member opens a session, one closes: two keys; the head (the clock) is not rewritten.
    nxt = {**members, "mem_new": 1764648000}
    del nxt["mem_7"]
    stored = store.save(CLOCK, nxt, 4)
    assert store.written[-1] == [
        (b"o3:mem_7", None),
        (b"o3:mem_new", b"1764648000"),
    ]
    assert stored.members == nxt and stored.clock == CLOCK and stored.layout == 4
    # A tick moves the clock only: the head alone, a few bytes.
    later = CLOCK + timedelta(seconds=30)
    store.save(later, nxt, 4)
    assert [k for k, _ in store.written[-1]] == [b"p3"]
    assert len(store.written[-1][0][1] or b"") < 100
    # Nothing changed: nothing written.
    store.save(later, nxt, 4)
    assert store.written[-1] == []
    # Format 3 rewrites the whole value for the same change (what format 4 removes).
    v3 = Store()
    v3.save(CLOCK, members, 3)
    v3.save(CLOCK, nxt, 3)
    assert len(v3.written[-1]) == 1 and len(v3.written[-1][0][1] or b"") > 10_000


def test_the_head_of_format_4_keeps_the_previous_release_out() -> None:
    store = Store()
    store.save(CLOCK, {"mem_a": 1}, 4)
    head = store.data[b"p3"]
    assert json.loads(head) == {"v": 4, "clock": CLOCK.isoformat()}
    # The previous release (reads 1-3) meets `{"v": 4}` in p<n> and stops, naming the setting,
    # instead of reading an index without members.
    with pytest.raises(state_format.NewerStateFormat):
        state_format._version("partition index", {"v": 5})
    assert state_format.index_version(head) == 4


@pytest.mark.parametrize("first,then", [(3, 4), (4, 3), (3, 3), (4, 4)])
def test_a_partition_switching_layout_reads_as_the_same_index(first: int, then: int) -> None:
    store = Store()
    members = {"mem_a": 100, "mem_b": 100, "mem_c": 200}
    store.save(CLOCK, members, first)
    # The next owner writes the other format: the index reads the same in between and after.
    assert (store.load().clock, store.load().members) == (CLOCK, members)
    changed = {"mem_a": 100, "mem_d": 300}
    stored = store.save(CLOCK + timedelta(seconds=30), changed, then)
    assert stored.members == changed and stored.layout == then
    member_keys = sorted(k for k in store.data if k.startswith(b"o3:"))
    if then == 4:
        assert member_keys == [b"o3:mem_a", b"o3:mem_d"]
    else:
        # Back to one value: no member key is left to be read as open by a later switch.
        assert member_keys == []
        assert state_format.load_index(store.data[b"p3"]) == (
            CLOCK + timedelta(seconds=30),
            changed,
        )


def test_stray_member_keys_are_never_read_as_open_and_are_deleted() -> None:
    store = Store()
    store.save(CLOCK, {"mem_a": 100}, 3)
    # A switch back to format 3 cut short left a member key behind.
    store.data[b"o3:mem_gone"] = b"50"
    stored = store.load()
    assert stored.members == {"mem_a": 100} and stored.strays == {"mem_gone"}
    # Switching to keys must not resurrect it ...
    stored = store.save(CLOCK, {"mem_a": 100}, 4)
    assert stored.members == {"mem_a": 100}
    assert b"o3:mem_gone" not in store.data
    # ... nor may staying on one value keep it.
    store2 = Store()
    store2.save(CLOCK, {"mem_a": 100}, 3)
    store2.data[b"o3:mem_gone"] = b"50"
    store2.save(CLOCK, {"mem_a": 100}, 3)
    assert b"o3:mem_gone" not in store2.data


def test_other_partitions_and_the_ledger_keys_are_not_the_index() -> None:
    data = {
        b"o3:mem_a": b"100",
        b"o31:mem_b": b"200",  # partition 31, not 3
        b"o4:mem_c": b"300",
        b"applied-p3": b'{"checkins": 10}',
        b"p3": state_format.dump_index_head(CLOCK, 4),
    }
    stored = pindex.load(P, data[b"p3"], data.items())
    assert stored.members == {"mem_a": 100}
    nothing = pindex.load(P, None, [])
    assert pindex.writes(P, nothing, None, {}, 4) == []
    assert pindex.writes(P, nothing, None, {}, 3) == []
