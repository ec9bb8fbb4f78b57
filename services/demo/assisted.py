"""The demo county's check-ins made for members (代签到, 团队签到): pure and seeded.

- **Members without a smartphone**: in each community a few elderly members (about 2%, at least
  one) serve as usual but never scan; their community's organizer checks them in and out at
  the station (`assist="assisted"`, `by organizer:<community>`). Their planned phone scans
  become the organizer's scans at the same moments (what the assisted route would have
  published then), and they sign up for no slot.
- **Teams**: in about a third of the communities the organizer set up a team (a leader who
  serves weekly and six members). The team signs up for its community's Saturdays together, and
  the leader checks in the members who came (`assist="team"`, `by member:<leader>`, the slot's
  `activity_id`); the leader scans on their own phone (`services.demo.slots`).

The events are built the way `api/routers/assisted.py` builds them (`_scan`): the same event id
derivation, fields and flags, with `occurred_at` and `received_at` the simulated moment the
organizer or leader tapped (the route stamps "now"). Ids derive from the seed and the planned
scan, so a re-run publishes the same scans and the session agent drops them as duplicates.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping, Set
from datetime import datetime
from typing import Any

from services.demo.county import County, DemoMember
from services.demo.plan import PlannedScan, habit_of
from services.demo.slots import Team, TeamCheckin
from services.events import AssistKind, CheckinScanned, derived_id

P_WITHOUT_PHONE = 0.02
TEAM_EVERY = 3  # one community in three has a team
TEAM_SIZE = 6
# A team needs a community big enough that a team is a part of it, not all of it.
TEAM_MIN_MEMBERS = 20

_NS = uuid.UUID("c2f1e0d9-4b3a-4c5d-9e8f-7a6b5c4d3e2f")


def leader_ever_set(history: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a member's registry history (`GET /v1/members/{id}/history` items) shows a team
    leader set at any time, even one cleared since: the demo sets a team's leaders only where
    none was ever set, so that a re-run never undoes an organizer's later change."""
    return any(
        c["field"] == "team_leader_id" and (c["before"] is not None or c["after"] is not None)
        for entry in history
        for c in entry["changes"]
    )


def _by_community(county: County) -> dict[str, list[DemoMember]]:
    out: dict[str, list[DemoMember]] = {}
    for m in county.members:
        out.setdefault(m.community_key, []).append(m)
    return out


def without_phone(county: County, seed: int) -> set[str]:
    """Member keys of the members without a smartphone: about 2% of each community (at least
    one), among those who serve (an organizer checks in the elderly who come)."""
    out: set[str] = set()
    for ckey, members in sorted(_by_community(county).items()):
        serving = [m.key for m in members if habit_of(seed, m) in ("weekly", "keen")]
        if not serving:
            continue
        rng = random.Random(f"{seed}:without-phone:{ckey}")
        n = max(1, round(len(members) * P_WITHOUT_PHONE))
        out.update(rng.sample(serving, min(n, len(serving))))
    return out


def plan_teams(county: County, seed: int, exclude: Set[str] = frozenset()) -> dict[str, Team]:
    """The teams, by community key: a leader who serves weekly or more, and TEAM_SIZE members
    who serve (none of `exclude`: a member without a phone is checked in by the organizer)."""
    teams: dict[str, Team] = {}
    for i, (ckey, members) in enumerate(sorted(_by_community(county).items())):
        if i % TEAM_EVERY or len(members) < TEAM_MIN_MEMBERS:
            continue
        serving = [
            m.key
            for m in members
            if m.key not in exclude and habit_of(seed, m) in ("weekly", "keen")
        ]
        if len(serving) < TEAM_SIZE + 1:
            continue
        rng = random.Random(f"{seed}:team:{ckey}")
        picked = rng.sample(serving, TEAM_SIZE + 1)
        teams[ckey] = Team(leader=picked[0], members=tuple(picked[1:]))
    return teams


def _scan(
    m: DemoMember,
    ids: Mapping[str, str],
    station_key: str,
    action: str,
    at: datetime,
    client_event_id: str,
    assist: AssistKind,
    by: str,
    activity_id: str | None = None,
) -> CheckinScanned:
    """The scan api/routers/assisted.py `_scan` makes for `m`, at the simulated moment `at`."""
    member_id = ids[m.key]
    community_id = ids[m.community_key]
    return CheckinScanned(
        event_id=derived_id("checkin", member_id, by, client_event_id),
        occurred_at=at,
        member_id=member_id,
        station_id=ids[station_key],
        # The demo's members serve at their own community's stations.
        station_community_id=community_id,
        unit_id=ids[m.unit_key],
        member_community_id=community_id,
        member_grid_id=ids.get(m.grid_key),
        action="in" if action == "in" else "out",
        client_event_id=client_event_id,
        received_at=at,
        assist=assist,
        assisted_by=by,
        activity_id=activity_id,
    )


def assisted_scans(
    county: County, ids: Mapping[str, str], scans: Iterable[PlannedScan], who: Set[str]
) -> list[CheckinScanned]:
    """The organizer's scans for the members in `who` (member keys), at the moments of their
    planned scans, in time order."""
    members = {m.key: m for m in county.members}
    out = []
    for s in sorted((s for s in scans if s.member_key in who), key=lambda s: s.scanned_at):
        m = members[s.member_key]
        by = f"organizer:{ids[m.community_key]}"
        ceid = str(uuid.uuid5(_NS, f"assisted:{s.client_event_id}"))
        out.append(_scan(m, ids, s.station_key, s.action, s.scanned_at, ceid, "assisted", by))
    return out


def team_scans(
    county: County, ids: Mapping[str, str], checkins: Iterable[TeamCheckin]
) -> list[CheckinScanned]:
    """The leaders' team check-ins and check-outs: one request each (one client_event_id for
    all the members named, as the team route takes it)."""
    members = {m.key: m for m in county.members}
    out = []
    for t in checkins:
        by = f"member:{ids[t.leader]}"
        for action, at in (("in", t.t_in), ("out", t.t_out)):
            ceid = str(uuid.uuid5(_NS, f"team:{t.activity_id}:{t.leader}:{action}"))
            out += [
                _scan(members[k], ids, t.station, action, at, ceid, "team", by, t.activity_id)
                for k in t.members
            ]
    out.sort(key=lambda e: e.occurred_at)
    return out


def as_planned(events: Iterable[CheckinScanned], key_of: Mapping[str, str]) -> list[PlannedScan]:
    """The scans as the simulator's truth takes them (`key_of`: server ids of members and
    stations to their keys): made and received at the same moment."""
    return [
        PlannedScan(
            key_of[e.member_id],
            key_of[e.station_id],
            e.action,
            e.occurred_at,
            e.received_at,
            e.client_event_id,
        )
        for e in events
    ]
