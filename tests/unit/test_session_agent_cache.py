"""The session agent's parsed-state cache is bounded (least recently used go first): an
unbounded one held 100,000 members' parsed states and made garbage collections of seconds."""

from __future__ import annotations

import pytest

from services.sessions import MemberState
from streams.agents import sessions as agent


def test_the_parsed_states_keep_the_most_recently_used_members(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agent.settings, "session_state_cache", 2)
    monkeypatch.setattr(agent, "_parsed", agent.OrderedDict())
    for m in ("a", "b"):
        agent._keep_parsed(m, m.encode(), MemberState(member_id=m))
    agent._parsed.move_to_end("a")  # "a" used again, as _load_member does on a hit
    agent._keep_parsed("c", b"c", MemberState(member_id="c"))
    assert list(agent._parsed) == ["a", "c"]
    agent._keep_parsed("a", b"a2", MemberState(member_id="a"))
    assert list(agent._parsed) == ["c", "a"] and agent._parsed["a"][0] == b"a2"
