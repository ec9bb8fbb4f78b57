"""Reads of service slots: activities, sign-ups, the agent's refusals, and attendance.

Attendance is decided from sessions by `services.activities.attendance` (a session at the place
overlapping the slot, with the one rule of which sessions show presence, `counting.present`):
no table stores it, so a review that voids or rejects a session changes the roster too, and a
sign-up credits nothing. Every read uses FINAL over tables keyed by the record's id.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.activities import EARLY, Attendance, Presence, attendance, proof
from services.events import ActivityFields, SignupFields
from services.processors.activities import ACTIVITY_COLUMNS
from services.reads._rows import utc_row
from services.warehouse.client import Warehouse

_SIGNUP_FIELDS = tuple(SignupFields.model_fields)


def _activity(row: dict[str, Any]) -> ActivityFields:
    row = utc_row(row)
    row["unit_ids"] = tuple(row["unit_ids"])
    return ActivityFields.model_validate(row)


def activity(wh: Warehouse, activity_id: str) -> ActivityFields | None:
    rows = wh.query_dicts(
        f"SELECT {', '.join(ACTIVITY_COLUMNS)} FROM activities FINAL "
        "WHERE activity_id = %(id)s LIMIT 1",
        {"id": activity_id},
    )
    return _activity(rows[0]) if rows else None


def list_activities(
    wh: Warehouse,
    community_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
    include_cancelled: bool = True,
) -> tuple[list[ActivityFields], int]:
    """Activities starting in [since, until), by start."""
    where: list[str] = ["1"]
    params: dict[str, Any] = {}
    if community_id is not None:
        where.append("community_id = %(c)s")
        params["c"] = community_id
    if since is not None:
        where.append("starts_at >= %(since)s")
        params["since"] = since
    if until is not None:
        where.append("starts_at < %(until)s")
        params["until"] = until
    if not include_cancelled:
        where.append("status = 'open'")
    cond = " AND ".join(where)
    rows = wh.query_dicts(
        f"SELECT {', '.join(ACTIVITY_COLUMNS)} FROM activities FINAL WHERE {cond} "
        f"ORDER BY starts_at, activity_id LIMIT {int(limit)} OFFSET {int(offset)}",
        params,
    )
    total = wh.query_dicts(f"SELECT count() AS n FROM activities FINAL WHERE {cond}", params)
    return [_activity(r) for r in rows], int(total[0]["n"]) if total else 0


def signups(wh: Warehouse, activity_ids: list[str]) -> list[SignupFields]:
    """Every member's latest sign-up for these activities, in sign-up order."""
    if not activity_ids:
        return []
    rows = wh.query_dicts(
        f"SELECT {', '.join(_SIGNUP_FIELDS)} FROM activity_signups FINAL "
        "WHERE activity_id IN %(ids)s ORDER BY activity_id, seq",
        {"ids": activity_ids},
    )
    return [SignupFields.model_validate(utc_row(r)) for r in rows]


def member_signups(
    wh: Warehouse, member_id: str, activity_ids: list[str] | None = None
) -> list[SignupFields]:
    where = "member_id = %(m)s"
    params: dict[str, Any] = {"m": member_id}
    if activity_ids is not None:
        if not activity_ids:
            return []
        where += " AND activity_id IN %(ids)s"
        params["ids"] = activity_ids
    rows = wh.query_dicts(
        f"SELECT {', '.join(_SIGNUP_FIELDS)} FROM activity_signups FINAL WHERE {where} "
        "ORDER BY signed_up_at",
        params,
    )
    return [SignupFields.model_validate(utc_row(r)) for r in rows]


def waiting_positions(signups_: list[SignupFields]) -> dict[tuple[str, str], int]:
    """(activity, member) -> 1-based place on the waiting list, in sign-up order."""
    out: dict[tuple[str, str], int] = {}
    counter: dict[str, int] = defaultdict(int)
    for s in sorted(signups_, key=lambda s: (s.activity_id, s.seq)):
        if s.status == "waiting":
            counter[s.activity_id] += 1
            out[(s.activity_id, s.member_id)] = counter[s.activity_id]
    return out


@dataclass(frozen=True)
class Verdict:
    """What became of one command: its sign-up as the agent wrote it, or its refusal."""

    signup: SignupFields | None = None
    position: int | None = None
    code: str | None = None
    reason: str | None = None


def verdict(
    wh: Warehouse, activity_id: str, member_id: str, command_event_id: str, signing_up: bool
) -> Verdict | None:
    """The agent's verdict on a member's command, once it reached ClickHouse (None: not yet).
    A sign-up is recognised by the command it came from (kept through a promotion); a cancel by
    the version it wrote."""
    rej = wh.query_dicts(
        "SELECT code, reason FROM activity_rejections FINAL "
        "WHERE activity_id = %(a)s AND command_event_id = %(e)s LIMIT 1",
        {"a": activity_id, "e": command_event_id},
    )
    if rej:
        return Verdict(code=str(rej[0]["code"]), reason=str(rej[0]["reason"]))
    mine = [s for s in signups(wh, [activity_id]) if s.member_id == member_id]
    if not mine:
        return None
    s = mine[0]
    done = (
        s.signup_event_id == command_event_id
        if signing_up
        else s.status == "withdrawn" and s.last_event_id == command_event_id
    )
    if not done:
        return None
    pos = waiting_positions(signups(wh, [activity_id])).get((activity_id, member_id))
    return Verdict(signup=s, position=pos)


def rejections(wh: Warehouse, activity_id: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = wh.query_dicts(
        "SELECT command_event_id, action, actor_role, actor_id, member_id, code, reason, "
        "occurred_at FROM activity_rejections FINAL WHERE activity_id = %(a)s "
        f"ORDER BY occurred_at DESC LIMIT {int(limit)}",
        {"a": activity_id},
    )
    return [utc_row(r) for r in rows]


def presences(
    wh: Warehouse, member_ids: list[str], since: datetime, until: datetime
) -> dict[str, list[Presence]]:
    """The members' sessions that started in [since, until), as attendance sees them."""
    if not member_ids:
        return {}
    rows = wh.query_dicts(
        "SELECT member_id, station_id, station_community_id, start, end, status, voided "
        "FROM sessions FINAL WHERE member_id IN %(m)s AND start >= %(s)s AND start < %(u)s",
        {"m": member_ids, "s": since, "u": until},
    )
    out: dict[str, list[Presence]] = defaultdict(list)
    for r in map(utc_row, rows):
        out[r["member_id"]].append(
            Presence(
                station_id=r["station_id"],
                station_community_id=r["station_community_id"],
                start=r["start"],
                end=r["end"],
                status=r["status"],
                voided=bool(r["voided"]),
            )
        )
    return out


@dataclass(frozen=True)
class RosterEntry:
    signup: SignupFields
    position: int | None
    attendance: Attendance | None
    # The station whose session proved the attendance (a grid's slot: which of the
    # community's stations the member scanned in at).
    station_id: str | None = None


def _window(acts: list[ActivityFields]) -> tuple[datetime, datetime]:
    # Sessions that started up to half a day before a slot may still be running in it.
    return (
        min(a.starts_at for a in acts) - timedelta(hours=12) - EARLY,
        max(a.ends_at for a in acts),
    )


def roster(
    wh: Warehouse, a: ActivityFields, now: datetime, unit_id: str | None = None
) -> list[RosterEntry]:
    """Every sign-up of the activity (HR: its unit's members only), with the waiting position
    and the attendance."""
    all_signups = signups(wh, [a.activity_id])
    pos = waiting_positions(all_signups)
    shown = [s for s in all_signups if unit_id is None or s.unit_id == unit_id]
    since, until = _window([a])
    seen = presences(wh, [s.member_id for s in shown if s.status == "placed"], since, until)
    out = []
    for s in shown:
        mine = seen.get(s.member_id, [])
        p = proof(a, s, mine)
        out.append(
            RosterEntry(
                s,
                pos.get((a.activity_id, s.member_id)),
                attendance(a, s, mine, now),
                p.station_id if p is not None else None,
            )
        )
    return out


@dataclass(frozen=True)
class NoShowCount:
    member_id: str
    unit_id: str
    community_id: str
    placed: int
    attended: int
    no_shows: int


def no_shows(
    wh: Warehouse,
    now: datetime,
    since: datetime,
    until: datetime,
    community_id: str | None = None,
    unit_id: str | None = None,
    member_id: str | None = None,
) -> list[NoShowCount]:
    """Per member, over the slots that started in [since, until) and are over: how many they had
    a place in, attended, and did not show for. Slots not over yet are not counted."""
    acts, _ = list_activities(wh, community_id, since, min(until, now), 100_000, 0, False)
    acts = [a for a in acts if a.ends_at <= now]
    if not acts:
        return []
    by_id = {a.activity_id: a for a in acts}
    placed = [
        s
        for s in signups(wh, list(by_id))
        if s.status == "placed"
        and (unit_id is None or s.unit_id == unit_id)
        and (member_id is None or s.member_id == member_id)
    ]
    lo, hi = _window(acts)
    seen = presences(wh, sorted({s.member_id for s in placed}), lo, hi)
    tally: dict[str, list[int]] = {}
    where: dict[str, tuple[str, str]] = {}
    for s in placed:
        verdict_ = attendance(by_id[s.activity_id], s, seen.get(s.member_id, []), now)
        t = tally.setdefault(s.member_id, [0, 0, 0])
        where[s.member_id] = (s.unit_id, s.community_id)
        t[0] += 1
        t[1] += verdict_ == "attended"
        t[2] += verdict_ == "no_show"
    return sorted(
        (NoShowCount(m, where[m][0], where[m][1], t[0], t[1], t[2]) for m, t in tally.items()),
        key=lambda c: (-c.no_shows, c.member_id),
    )


def places_starting(
    wh: Warehouse, since: datetime, until: datetime
) -> list[tuple[ActivityFields, SignupFields]]:
    """Placed sign-ups of open slots starting in [since, until): the slot reminders."""
    acts, _ = list_activities(wh, None, since, until, 100_000, 0, False)
    by_id = {a.activity_id: a for a in acts}
    return [(by_id[s.activity_id], s) for s in signups(wh, list(by_id)) if s.status == "placed"]


def signed_up_in(wh: Warehouse, community_id: str, since: datetime, until: datetime) -> set[str]:
    """Members with a place or on the waiting list in an open slot of the community starting
    in [since, until): they have planned their week."""
    acts, _ = list_activities(wh, community_id, since, until, 100_000, 0, False)
    return {
        s.member_id
        for s in signups(wh, [a.activity_id for a in acts])
        if s.status in ("placed", "waiting")
    }
