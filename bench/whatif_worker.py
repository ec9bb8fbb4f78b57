"""The faust worker with the fix proposed for streams/agents/sessions.py applied in-process, to
measure what it is worth: `python -m bench.whatif_worker worker -l info`.

Today every event parses the member's whole state from JSON (`_load_member`) and writes it whole
to the table (so to its changelog): about 10 KB a scan for a member who serves every few hours,
growing with the 60-day review window. The proposal keeps the parsed state beside the table
(the table stays the durable copy; a cache entry is used only while the table still holds the
very string it was parsed from, so recovery and rebalances read the table as before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams import sessions as rules
from streams.agents import sessions as agent
from streams.app import app
from streams.sessions import MemberState

_parsed: dict[str, tuple[str, MemberState]] = {}
_latest: dict[str, MemberState] = {}
_table = agent.member_state


def _remember(name: str) -> Callable[..., Any]:
    original: Callable[..., Any] = getattr(rules, name)

    def call(*args: Any, **kw: Any) -> Any:
        state, out = original(*args, **kw)
        _latest[state.member_id] = state
        return state, out

    return call


class _Table:
    """The table as the agent uses it (get, item assignment); the parsed copy kept beside it."""

    def get(self, key: str) -> Any:
        return _table.get(key)

    def __setitem__(self, key: str, raw: str) -> None:
        _table[key] = raw
        state = _latest.get(key)
        if state is not None:
            _parsed[key] = (raw, state)


def _load_member(member_id: str) -> MemberState:
    raw = _table.get(member_id)
    if not raw:
        return MemberState(member_id=member_id)
    hit = _parsed.get(member_id)
    if hit is not None and hit[0] is raw:
        return hit[1]
    state = MemberState.model_validate_json(raw)
    _parsed[member_id] = (raw, state)
    return state


agent._load_member = _load_member
agent.member_state = _Table()  # type: ignore[assignment]
for _name in ("on_scan", "on_review", "on_clock"):
    setattr(agent, _name, _remember(_name))

if __name__ == "__main__":
    app.main()
