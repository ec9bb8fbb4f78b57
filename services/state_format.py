"""The worker's state as it is stored on its changelog topics, with a format version, so that
workers of two releases can share a consumer group during a rolling upgrade (docs/upgrades.md).

A partition's state is written by whichever worker owns the partition and read by the next
owner (and by standbys), which during an upgrade may run the previous release. So a worker
READS the current format and the two before it, and WRITES the format `STATE_WRITE_VERSION`
says: the previous one (the default) until every worker runs this release, then the current
one. A state of a newer format than a worker reads stops that worker with a message saying so,
rather than being misread (a rolled-back worker after the fleet switched to writing the new
format: roll forward, or set STATE_WRITE_VERSION back on the new workers first).

The formats (the version is a top-level `"v"`; 1 and 2 carried none):

| store | 2 | 3 | 4 (current) |
|---|---|---|---|
| member state (`member-session-state-v2`) | kept sessions without `base` | each kept session's record without what the state says already: the member, the session id (its key), the event type | as 3 |
| partition index (`session-partition-index-v2`) | `p<n>`: `open`: member -> deadline (epoch s) | `p<n>`: `due`: deadline -> members (one deadline is shared by every session opened the same local day) | a key per member: `o<n>:<member>` -> deadline; `p<n>` holds only the clock |
| list item (`list-item-state`) | the item's state | the same, with its version | the same |

(Format 1, read until this release: kept sessions with their whole derived `base`, the index's
`open` a list of members.) Format 4 exists so that a batch writes the index entries of the
members whose session opened or closed, not the whole partition's index (~400 KB at 8,000 open
members, rewritten on most batches): the index layout, hence the worker's reading of it,
changes, so a worker of the previous release must not meet it (it refuses the `p<n>` head
`{"v":4}`). The layout switch itself (whole value <-> keys) is `services/partition_index.py`.

Pure: no I/O; the agents (streams/agents/) call it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.lists import ItemState
    from services.sessions import MemberState

CURRENT = 4
# What a worker of this release reads: the current format and the two before it.
READS = (CURRENT - 2, CURRENT - 1, CURRENT)
# What it may write: the previous format (while workers of the previous release run) or this one.
WRITES = (CURRENT - 1, CURRENT)

# Left out of each kept record in format 3: the state says them already.
_IMPLIED = frozenset({"member_id", "session_id", "event_type"})
_SESSION_EVENT_TYPE = "session.recorded"


class NewerStateFormat(ValueError):
    """A state written in a format this worker does not read (a newer release wrote it)."""

    def __init__(self, store: str, version: object) -> None:
        super().__init__(
            f"{store} in state format {version!r}, written by a newer worker; this worker reads "
            f"formats {READS[0]}-{READS[-1]}: upgrade it (or set STATE_WRITE_VERSION={CURRENT} "
            "on the newer workers and let their partitions be written again; docs/upgrades.md)"
        )


def _check_writable(version: int) -> None:
    if version not in WRITES:
        raise ValueError(f"state format {version} cannot be written; this release writes {WRITES}")


def _version(store: str, data: dict[str, Any]) -> int | None:
    v = data.get("v")
    if v is None:
        return None
    if not isinstance(v, int) or v not in READS:
        raise NewerStateFormat(store, v)
    return v


def version_of(raw: bytes | str) -> int | None:
    """The format of a stored document: None for the unversioned ones (formats 1 and 2)."""
    data = json.loads(raw)
    v = data.get("v") if isinstance(data, dict) else None
    return v if isinstance(v, int) else None


# ---- member state ---------------------------------------------------------------------------


def dump_member(state: MemberState, version: int) -> bytes:
    _check_writable(version)
    if version == 2:
        return state.model_dump_json().encode()
    compact = state.model_dump_json(exclude={"sessions": {"__all__": {"last": set(_IMPLIED)}}})
    return f'{{"v":{version},'.encode() + compact[1:].encode()


def expand_member(data: Any) -> Any:
    """A stored member state, as parsed JSON, brought to the shape of `MemberState` (its
    validator calls this first; formats 1 and 2 pass through to the validators after it)."""
    if not isinstance(data, dict) or "v" not in data:
        return data
    _version("member state", data)
    out = {k: v for k, v in data.items() if k != "v"}
    member_id = out.get("member_id", "")
    sessions = {}
    for session_id, kept in (out.get("sessions") or {}).items():
        if isinstance(kept, dict) and isinstance(kept.get("last"), dict):
            last = {
                "member_id": member_id,
                "session_id": session_id,
                "event_type": _SESSION_EVENT_TYPE,
                **kept["last"],
            }
            kept = {**kept, "last": last}
        sessions[session_id] = kept
    out["sessions"] = sessions
    return out


# ---- the partition index --------------------------------------------------------------------


def dump_index(clock: datetime | None, members: dict[str, int], version: int) -> bytes:
    """The partition's clock and its members with an open session, each with the epoch second
    at which the clock alone closes that session, as one value (formats 2 and 3; format 4
    keeps the members under their own keys: `dump_index_head`, services/partition_index.py)."""
    _check_writable(version)
    if version >= 4:
        raise ValueError(f"state format {version} keeps the index a key per member")
    iso = clock.isoformat() if clock else None
    if version == 2:
        return json.dumps({"clock": iso, "open": members}, sort_keys=True).encode()
    due: dict[str, list[str]] = {}
    for member_id, deadline in sorted(members.items()):
        due.setdefault(str(deadline), []).append(member_id)
    return json.dumps({"v": version, "clock": iso, "due": due}, sort_keys=True).encode()


def dump_index_head(clock: datetime | None, version: int) -> bytes:
    """Format 4's `p<n>`: the clock alone; the members are keys of their own."""
    _check_writable(version)
    return json.dumps({"v": version, "clock": clock.isoformat() if clock else None}).encode()


def index_version(raw: bytes) -> int | None:
    """The format of a stored `p<n>` (None: formats 1 and 2); a newer one than read refuses."""
    data = json.loads(raw)
    return _version("partition index", data) if isinstance(data, dict) else None


def load_index(raw: bytes) -> tuple[datetime | None, dict[str, int]]:
    """A `p<n>` value: the clock and, up to format 3, the members (format 4: none here)."""
    data = json.loads(raw)
    clock = datetime.fromisoformat(data["clock"]) if data.get("clock") else None
    version = _version("partition index", data)
    if version is not None and version >= 4:
        return clock, {}
    if version is not None:
        members = {m: int(deadline) for deadline, ms in data["due"].items() for m in ms}
        return clock, members
    found = data.get("open", {})
    if isinstance(found, list):
        # Format 1, written before deadlines were kept: due at once, the next tick learns each.
        return clock, dict.fromkeys(found, 0)
    return clock, {m: int(d) for m, d in found.items()}


# ---- list items -----------------------------------------------------------------------------


def dump_item(state: ItemState, version: int) -> str:
    _check_writable(version)
    body = state.model_dump_json()
    return body if version == 2 else f'{{"v":{version},' + body[1:]


def load_item(stored: str) -> ItemState:
    from services.lists import ItemState

    if stored.startswith('{"v":'):
        data = json.loads(stored)
        _version("list item", data)
        return ItemState.model_validate({k: v for k, v in data.items() if k != "v"})
    return ItemState.model_validate_json(stored)
