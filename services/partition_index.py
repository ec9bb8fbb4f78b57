"""A partition's index of open sessions as stored: which keys a batch writes (issue 16).

The index says, per partition, the clock (the latest tick) and every member with an open
session with the epoch second at which the clock alone closes it. Up to state format 3 it was
one value, `p<n>`, rewritten whenever a member opened or closed a session: ~400 KB at 8,000
open members, on most batches, to the changelog and into the store. Format 4 keeps a key per
member, `o<n>:<member id>` -> deadline, and `p<n>` holds the clock only, so a batch writes
what changed: the members whose deadline moved, a tombstone for each one whose session closed.

During a rolling upgrade the format written follows STATE_WRITE_VERSION (docs/upgrades.md), and
a partition can switch layout in either direction when its owner changes. The layout in force
is the head's: a `p<n>` of format 4 means the member keys are the index; of an earlier format,
the value is, and any member keys found are strays (left by a switch cut short) that are
deleted with the next write. A switch writes the whole index in the new layout and deletes
every key of the old one, in one batch.

Pure: no I/O; the session agent reads the stored keys and writes what `writes` returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from services import state_format

# The layout a key per member starts with (state format 4).
KEYED = 4


def head_key(partition: int) -> bytes:
    return b"p%d" % partition


def member_prefix(partition: int) -> bytes:
    return b"o%d:" % partition


def member_key(partition: int, member_id: str) -> bytes:
    return member_prefix(partition) + member_id.encode()


@dataclass
class Stored:
    """What the store holds of one partition's index, parsed."""

    clock: datetime | None = None
    members: dict[str, int] = field(default_factory=dict)
    # The format of the head (None: nothing stored, or formats 1-2); KEYED: members are keys.
    layout: int | None = None
    # Member keys present while the head says the value is the index: deleted at the next write.
    strays: frozenset[str] = frozenset()
    head: bytes | None = None


def load(partition: int, head: bytes | None, member_items: Iterable[tuple[bytes, bytes]]) -> Stored:
    """The index from its head and the partition's member keys (`o<n>:...`, in any order)."""
    prefix = member_prefix(partition)
    keyed = {
        key[len(prefix) :].decode(): int(value)
        for key, value in member_items
        if key.startswith(prefix) and value is not None
    }
    if head is None:
        return Stored(strays=frozenset(keyed), layout=None)
    layout = state_format.index_version(head)
    clock, members = state_format.load_index(head)
    if layout is not None and layout >= KEYED:
        return Stored(clock, keyed, layout, frozenset(), head)
    return Stored(clock, members, layout, frozenset(keyed), head)


def writes(
    partition: int,
    before: Stored,
    clock: datetime | None,
    members: dict[str, int],
    version: int,
) -> list[tuple[bytes, bytes | None]]:
    """The keys to write (None: delete) so that the store holds `clock` and `members` in the
    layout of state format `version`; nothing when nothing changed and the layout stays."""
    out: list[tuple[bytes, bytes | None]] = []
    if version >= KEYED:
        switching = before.layout is None or before.layout < KEYED
        if switching:
            if before.head is None and not members and clock is None and not before.strays:
                return []
            old: dict[str, int] = {}
            gone = set(before.strays) | set(before.members)
        else:
            old = before.members
            gone = set(old)
        for member_id in sorted(gone - members.keys()):
            out.append((member_key(partition, member_id), None))
        for member_id, deadline in sorted(members.items()):
            if old.get(member_id) != deadline:
                out.append((member_key(partition, member_id), str(deadline).encode()))
        if switching or clock != before.clock:
            out.append((head_key(partition), state_format.dump_index_head(clock, version)))
        return out
    # One value (formats 2, 3): rewritten whole when anything changed, and when the layout
    # switches back from keys, every member key deleted.
    leftovers = set(before.strays)
    if before.layout is not None and before.layout >= KEYED:
        leftovers |= set(before.members)
    same_layout = before.layout == version
    if clock == before.clock and members == before.members and same_layout and not leftovers:
        return []
    if before.head is None and clock is None and not members and not leftovers:
        return []
    for member_id in sorted(leftovers):
        out.append((member_key(partition, member_id), None))
    out.append((head_key(partition), state_format.dump_index(clock, members, version)))
    return out


def after(
    partition: int,
    before: Stored,
    written: list[tuple[bytes, bytes | None]],
    clock: datetime | None,
    members: dict[str, int],
    version: int,
) -> Stored:
    """The index as stored once `written` (what `writes` returned for these arguments) landed:
    any write leaves no strays and the layout of `version`."""
    if not written:
        return before
    head = next((v for k, v in written if k == head_key(partition)), before.head)
    return Stored(clock, dict(members), version, frozenset(), head)
