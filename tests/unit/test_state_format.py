"""services.state_format: the worker's stored state in the formats a mixed fleet shares during a
rolling upgrade (docs/upgrades.md). A worker reads the current format and the two before it;
the previous format, written while STATE_WRITE_VERSION says so, is byte for byte what the
previous release wrote, so a worker of that release reads it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services import state_format
from services.events import SessionRecorded
from services.lists import ItemState
from services.sessions import MemberState
from services.settings import Settings
from tests.unit.test_lists import ORDER, cmd, ok
from tests.unit.test_sessions import V2_STATE, at, review, run, scan

# V2_STATE above (named for the Kept form it holds) is format 1: each kept session with its
# derived `base`, weeks keyed `week|station` (no longer written by any release this one meets,
# still understood: unversioned).
FORMAT_1 = V2_STATE


def format_2(state: MemberState) -> bytes:
    """What the release before the previous one wrote (`model_dump_json()`)."""
    return state.model_dump_json().encode()


def a_state() -> MemberState:
    state, _ = run(scan("in", at(9)), scan("out", at(11)), scan("in", at(13)), scan("out", at(15)))
    sid = next(iter(state.sessions))
    state, _ = run(review(sid, "adjust", credited_seconds=3600, reason="核实"), state=state)
    state, _ = run(scan("in", at(16)), state=state)  # and one still open
    return state


def test_each_readable_member_state_format_reads_as_the_same_state() -> None:
    state = a_state()
    v2 = format_2(state)
    v3 = state_format.dump_member(state, 3)
    v4 = state_format.dump_member(state, 4)
    for raw in (v2, v3, v4):
        assert MemberState.model_validate_json(raw) == state
    old = MemberState.model_validate_json(FORMAT_1)
    assert MemberState.model_validate_json(state_format.dump_member(old, 4)) == old
    assert [state_format.version_of(r) for r in (FORMAT_1, v2, v3, v4)] == [None, None, 3, 4]
    assert (state.sessions, state.weeks) != ({}, {})


def test_format_3_is_what_the_previous_release_writes_and_format_4_is_new_to_it() -> None:
    state = a_state()
    v3 = json.loads(state_format.dump_member(state, 3))
    assert v3["v"] == 3
    # Format 3 leaves the member, the session id and the event type out of each kept record.
    for sid, kept in v3["sessions"].items():
        assert not {"member_id", "session_id", "event_type"} & set(kept["last"])
        with pytest.raises(ValidationError):
            SessionRecorded.model_validate(kept["last"])
        assert state.sessions[sid].last.member_id == "mem_1"
    assert len(state_format.dump_member(state, 3)) < len(format_2(state))
    # Format 4 changes the partition index's layout (a key per member); a member state is
    # format 3's with its version, which the previous release refuses, as it must: a worker that
    # reads format 4 states also reads the index a key per member.
    v4 = state_format.dump_member(state, 4)
    assert v4 == b'{"v":4' + state_format.dump_member(state, 3)[6:]


def test_a_newer_format_stops_the_worker_with_what_to_do() -> None:
    raw = b'{"v":5' + state_format.dump_member(a_state(), 4)[6:]
    with pytest.raises(ValidationError, match=r"state format 5.*STATE_WRITE_VERSION=4"):
        MemberState.model_validate_json(raw)
    with pytest.raises(state_format.NewerStateFormat, match="partition index in state format 5"):
        state_format.load_index(b'{"v": 5, "clock": null}')
    with pytest.raises(state_format.NewerStateFormat, match="list item in state format 5"):
        state_format.load_item('{"v":5,"wish":null,"resource":null,"recent_event_ids":[]}')


def test_each_readable_index_format_reads_as_the_same_index() -> None:
    clock = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    members = {"mem_a": 1764561600, "mem_b": 1764561600, "mem_c": 1764648000}
    v2 = json.dumps({"clock": clock.isoformat(), "open": members}, sort_keys=True).encode()
    v3 = state_format.dump_index(clock, members, 3)
    assert json.loads(v3)["due"] == {"1764561600": ["mem_a", "mem_b"], "1764648000": ["mem_c"]}
    assert state_format.load_index(v2) == state_format.load_index(v3) == (clock, members)
    assert state_format.load_index(state_format.dump_index(None, {}, 3)) == (None, {})
    # Format 4's head holds the clock only (members: tests/unit/test_partition_index.py).
    head = state_format.dump_index_head(clock, 4)
    assert state_format.load_index(head) == (clock, {})
    with pytest.raises(ValueError, match="a key per member"):
        state_format.dump_index(clock, members, 4)


def test_each_readable_list_item_format_reads_as_the_same_item() -> None:
    item = ok(ItemState(), cmd("order", **ORDER))
    v2 = item.model_dump_json()
    v3 = state_format.dump_item(item, 3)
    v4 = state_format.dump_item(item, 4)
    assert [json.loads(v).get("v") for v in (v2, v3, v4)] == [None, 3, 4]
    assert state_format.load_item(v2) == state_format.load_item(v3) == item
    assert state_format.load_item(v4) == item


def test_only_the_previous_and_the_current_format_are_written() -> None:
    state = a_state()
    for version in (2, 5):
        with pytest.raises(ValueError, match="cannot be written"):
            state_format.dump_member(state, version)
        with pytest.raises(ValueError, match="cannot be written"):
            state_format.dump_index(None, {}, version)
        with pytest.raises(ValueError, match=r"(?i)state_write_version"):
            Settings(state_write_version=version)
    # Until a setting says every worker is upgraded, the previous format.
    assert Settings().state_write_version == state_format.CURRENT - 1
    assert state_format.WRITES == (3, 4) and state_format.READS == (2, 3, 4)
