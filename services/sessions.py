"""Pairing scans into volunteer sessions, applying organizer reviews and keeping weekly totals.

Pure: no faust, no I/O. The agent keeps one `MemberState` per member in a changelog-backed table
and calls `on_scan`, `on_review` and `on_clock`; each returns the new state and the events to
publish. Sessions are *re-derived* from the member's recent scans sorted by `scanned_at`
(`derive`), so the result depends on the set of events, not on the order they arrived in: a
late offline scan lands in the right session, week and year, and replaying the log rebuilds the
same sessions. A session that changed gets a new revision; one that no longer exists gets a
voided revision. Time enters only through the log (clock ticks and scans' `received_at`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from services import counting, state_format
from services.events import (
    AssistKind,
    CheckinScanned,
    Event,
    MemberWeekRecorded,
    ScanProof,
    SessionRecorded,
    SessionReviewed,
    SessionStatus,
    derived_id,
)
from services.settings import Settings
from services.timeutil import end_of_local_day, iso_week

# Flags an organizer should look at; the review queue lists unreviewed sessions carrying one.
# A session closed by a check-in elsewhere is ordinary (moving between stations): not queued.
REVIEW_FLAGS = frozenset(
    {"forgotten_checkout", "over_cap", "checkout_without_checkin", counting.BELOW_MINIMUM_FLAG}
)
REVIEWED_FLAGS = frozenset({"approved", "adjusted", "rejected"})

# A session opened or closed by a poster scan that reached the server long after the time it
# claims (`backdated_poster`). The printed poster proves nothing about when (or whether) the
# member was there; a screen's rotating code does (its window is checked at the API). The flag
# sends the session to the organizer's review and changes no credit by itself: an honest phone
# without signal queues scans too, and the organizer, who knows who was there, rejects or
# adjusts. A station that wants no such scans at all refuses them (`backdated_poster: refuse`).
BACKDATED_POSTER = "backdated_poster"
REVIEW_FLAGS = REVIEW_FLAGS | {BACKDATED_POSTER}

# A session whose check-in or check-out someone else made for the member: an organizer or a
# station's tablet (`assisted`, 代签到) or the member's team leader (`team`), with one
# `by:<role>:<subject>` flag naming each who did it. Carried in the flags, as
# `backdated_poster` is, rather than in a new field of the session record: records forbid
# unknown fields, so a new one would stop a worker of the previous release reading the states
# and sessions of this one during a rolling upgrade. Neither flag sends the session to review
# nor changes its credit: the rules of what counts (services.counting) apply unchanged. An
# organizer who checks a member in vouches for the service as the reviewer would; a team leader
# is designated by the organizer, and the session names them, so a doubt is followed up like
# any session's (the anomaly flags still apply to these sessions).
ASSISTED = "assisted"
TEAM = "team"
BY_PREFIX = "by:"


def assisted_by(flags: list[str] | tuple[str, ...]) -> list[str]:
    """Who made the session's assisted or team scans (`role:subject`), from its flags."""
    return [f.removeprefix(BY_PREFIX) for f in flags if f.startswith(BY_PREFIX)]


@dataclass(frozen=True)
class SessionRules:
    """Every rule's knob; defaults documented in services.settings and the README."""

    # A second identical scan (same station, same action) this soon after the previous scan is
    # a double tap or a phone re-sending: ignored.
    repeat_window: timedelta = timedelta(minutes=2)
    # A poster scan received longer than this after its `scanned_at` is back-dated.
    poster_backdate: timedelta = timedelta(minutes=5)
    # A session longer than this is credited this much and flagged `over_cap`.
    cap: timedelta = timedelta(hours=8)
    # A session still open this long after the end of its check-in's local day had its
    # check-out forgotten: closed at the end of that day with `forgotten_checkout_credit`, and
    # flagged. The grace lets a real night duty (23:00 to 01:00) count in full.
    forgotten_checkout_grace: timedelta = timedelta(hours=4)
    forgotten_checkout_credit: timedelta = timedelta(0)
    # Scans are kept (and sessions re-paired) this far behind the member's clock. Must exceed
    # the oldest offline scan the API accepts (MAX_SCAN_AGE_H) plus a session's longest span.
    rederive_horizon: timedelta = timedelta(hours=96)
    # Sessions (and their weekly totals) stay in state, reviewable, this long after they start.
    review_window: timedelta = timedelta(days=60)
    # A session credited less than this is flagged `below_minimum`: it keeps its hours but is
    # not a service toward the week until an organizer approves it (services.counting.counted).
    week_minimum: timedelta = timedelta(minutes=30)

    def deadline(self, start: datetime) -> datetime:
        return end_of_local_day(start) + self.forgotten_checkout_grace

    @classmethod
    def from_settings(cls, s: Settings) -> SessionRules:
        return cls(
            repeat_window=timedelta(seconds=s.session_repeat_window_s),
            poster_backdate=timedelta(seconds=s.poster_backdate_s),
            cap=timedelta(hours=s.session_cap_h),
            forgotten_checkout_grace=timedelta(hours=s.session_forgotten_grace_h),
            forgotten_checkout_credit=timedelta(hours=s.session_forgotten_credit_h),
            rederive_horizon=timedelta(hours=s.session_rederive_horizon_h),
            review_window=timedelta(days=s.session_review_window_days),
            week_minimum=timedelta(minutes=s.week_min_credited_min),
        )


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Scan(_Frozen):
    event_id: str
    at: datetime
    received_at: datetime
    action: Literal["in", "out"]
    station_id: str
    station_community_id: str
    unit_id: str
    member_community_id: str
    member_grid_id: str | None = None
    # What the phone scanned: the poster's token or the screen's rotating code (None: a scan
    # recorded before the API said).
    proof: ScanProof | None = None
    # Made for the member by someone else (events.CheckinScanned.assist / assisted_by).
    assist: AssistKind | None = None
    assisted_by: str | None = None

    @classmethod
    def of(cls, e: CheckinScanned) -> Scan:
        return cls(
            event_id=e.event_id,
            at=e.occurred_at,
            received_at=e.received_at,
            action=e.action,
            station_id=e.station_id,
            station_community_id=e.station_community_id,
            unit_id=e.unit_id,
            member_community_id=e.member_community_id,
            member_grid_id=e.member_grid_id,
            proof=e.proof,
            assist=e.assist,
            assisted_by=e.assisted_by,
        )


def backdated_poster(
    proof: str | None, scanned_at: datetime, received_at: datetime, rules: SessionRules
) -> bool:
    """Whether a scan is a back-dated poster scan: the printed token, received more than
    `rules.poster_backdate` after the time it claims. The API refuses one at a station whose
    policy says so; the pairing rules flag the sessions it opens or closes."""
    return proof == "poster" and received_at - scanned_at > rules.poster_backdate


def with_presence(
    derived: list[Derived], scans: tuple[Scan, ...], rules: SessionRules
) -> list[Derived]:
    """The sessions with `backdated_poster` on each one a back-dated poster scan opened or
    closed (its check-in, or its check-out), and `assisted` / `team` (with who) on each one
    someone else's scan opened or closed."""
    late = {s.event_id for s in scans if backdated_poster(s.proof, s.at, s.received_at, rules)}
    helped = {s.event_id: s for s in scans if s.assist is not None}
    if not late and not helped:
        return derived
    out = []
    for d in derived:
        ends = (d.checkin_event_id, d.checkout_event_id)
        flags = d.flags
        if any(e in late for e in ends):
            flags = (*flags, BACKDATED_POSTER)
        for e in ends:
            scan = helped.get(e) if e is not None else None
            if scan is None:
                continue
            kind = ASSISTED if scan.assist == "assisted" else TEAM
            by = f"{BY_PREFIX}{scan.assisted_by or ''}"
            flags = (*flags, *(f for f in (kind, by) if f not in flags))
        out.append(d if flags == d.flags else d.model_copy(update={"flags": flags}))
    return out


class Derived(_Frozen):
    """A session as the scans alone make it, before any review."""

    session_id: str
    opening: Scan  # the check-in, or the check-out of an anomaly: where and for whom
    start: datetime
    end: datetime | None
    credited_seconds: int
    status: SessionStatus
    flags: tuple[str, ...] = ()
    checkin_event_id: str | None
    checkout_event_id: str | None
    # The other scans it took in (repeats, a same-station check-in while open): every scan the
    # rules receive is named by the session it ended up in, so none goes unaccounted.
    absorbed: tuple[str, ...] = ()


class Review(_Frozen):
    review_id: str
    action: Literal["approve", "adjust", "reject"]
    credited_seconds: int | None
    at: datetime


class Kept(_Frozen):
    """A session in state: its latest record, and what the scans alone made of it (status,
    credit and flags before any review), which a later review applies to.

    The record already holds everything else of the derived session. States written before
    held the whole `Derived` session as `base` beside the record, repeating most of it (about
    45% of a member's state, serialised once a batch); they are read as before (`_from_v2`).
    """

    last: SessionRecorded
    status: SessionStatus
    credited_seconds: int
    flags: tuple[str, ...] = ()
    # Live: still re-derived from the scans in state. A session that fell behind the horizon is
    # final: only a review can change it.
    live: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_v2(cls, data: Any) -> Any:
        if isinstance(data, dict) and "base" in data:
            base = data["base"]
            if isinstance(base, BaseModel):
                base = base.model_dump()
            return {
                "last": data["last"],
                "live": data.get("live", True),
                "status": base["status"],
                "credited_seconds": base["credited_seconds"],
                "flags": tuple(base.get("flags", ())),
            }
        return data

    @classmethod
    def of(cls, d: Derived, last: SessionRecorded) -> Kept:
        return cls(last=last, status=d.status, credited_seconds=d.credited_seconds, flags=d.flags)

    def made_by(self, d: Derived) -> bool:
        """Whether the scans' session `d` is the one kept, so its record would not change."""
        r, o = self.last, d.opening
        return (
            d.status == self.status
            and d.credited_seconds == self.credited_seconds
            and d.flags == self.flags
            and d.start == r.start
            and d.end == r.end
            and d.checkin_event_id == r.checkin_event_id
            and d.checkout_event_id == r.checkout_event_id
            and d.absorbed == tuple(r.absorbed_event_ids)
            and o.station_id == r.station_id
            and o.station_community_id == r.station_community_id
            and o.unit_id == r.unit_id
            and o.member_community_id == r.member_community_id
            and o.member_grid_id == r.member_grid_id
        )


class WeekTotal(_Frozen):
    sessions: int = 0
    seconds: int = 0
    version: int = 0
    station_community_id: str = ""
    member_community_id: str = ""
    member_grid_id: str | None = None
    unit_id: str = ""
    # The member's clock when these totals last changed (for readers; not part of any key).
    as_of: datetime | None = None


class MemberState(_Frozen):
    member_id: str = ""
    scans: tuple[Scan, ...] = ()  # sorted by (at, event_id)
    # Scans before this instant were dropped with their final sessions.
    floor: datetime | None = None
    # Ids of recently dropped scans, so a very late redelivery is still recognised.
    dropped_ids: tuple[str, ...] = ()
    sessions: dict[str, Kept] = {}
    reviews: dict[str, Review] = {}
    applied_reviews: tuple[str, ...] = ()
    # Keyed by `week_key`: the week, the station and whose service it was (unit, community,
    # grid), so a member who moves in the middle of a week keeps each part where it was earned.
    weeks: dict[str, WeekTotal] = {}
    week_version: int = 0
    watermark: datetime | None = None
    last_tick: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _weeks_keyed_by_attribution(cls, data: Any) -> Any:
        """States written before the week key named whose service it was (`week|station`):
        each total moves under the key of the unit, community and grid it carries. (First, a
        state stored in a versioned format is brought to this shape: services/state_format.py.)"""
        data = state_format.expand_member(data)
        if not isinstance(data, dict) or not isinstance(data.get("weeks"), dict):
            return data
        weeks = data["weeks"]
        if all(k.count("|") >= 4 for k in weeks):
            return data
        moved = {}
        for key, w in weeks.items():
            if key.count("|") >= 4:
                moved[key] = w
                continue
            fields = w.model_dump() if isinstance(w, BaseModel) else dict(w)
            moved[
                _attributed(
                    key,
                    fields.get("unit_id", ""),
                    fields.get("member_community_id", ""),
                    fields.get("member_grid_id"),
                )
            ] = w
        return {**data, "weeks": moved}

    @property
    def has_open(self) -> bool:
        return any(k.live and k.status == "open" for k in self.sessions.values())

    def open_deadline(self, rules: SessionRules) -> datetime | None:
        """When the clock alone would close the member's open session as forgotten (None: no
        open session). Until then a clock tick changes nothing the member can see."""
        starts = [k.last.start for k in self.sessions.values() if k.live and k.status == "open"]
        return rules.deadline(min(starts)) if starts else None


class LateScan(ValueError):
    """A scan older than everything the state can still re-pair: it goes to the dead letters."""


RECENT_IDS = 256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- the pairing rules --------------------------------------------------------------------


def derive(
    scans: tuple[Scan, ...], watermark: datetime | None, rules: SessionRules
) -> list[Derived]:
    """Sessions from scans sorted by time; `watermark` is a lower bound of the current time."""
    out: list[Derived] = []
    cur: Scan | None = None
    # Scans the open session `cur` took in besides its check-in.
    absorbed: list[str] = []
    prev: Scan | None = None
    for s in scans:
        repeat = (
            prev is not None
            and prev.station_id == s.station_id
            and prev.action == s.action
            and s.at - prev.at < rules.repeat_window
        )
        prev = s
        if repeat:
            # A repeated check-in follows a check-in, so `cur` is open; a repeated check-out
            # follows a check-out, which closed the session last appended.
            if s.action == "in" and cur is not None:
                absorbed.append(s.event_id)
            elif out:
                out[-1] = out[-1].model_copy(update={"absorbed": (*out[-1].absorbed, s.event_id)})
            continue
        if cur is not None and s.at >= rules.deadline(cur.at):
            out.append(_auto_close(cur, rules, absorbed))
            cur = None
        if s.action == "in":
            if cur is not None:
                if cur.station_id == s.station_id:
                    # Checked in again at the same station the same day: the session goes on.
                    absorbed.append(s.event_id)
                    continue
                out.append(_close(cur, s, rules, ("closed_by_next_checkin",), absorbed))
            cur = s
            absorbed = []
            continue
        if cur is None:
            out.append(
                Derived(
                    session_id=derived_id("session", s.event_id),
                    opening=s,
                    start=s.at,
                    end=s.at,
                    credited_seconds=0,
                    status="closed",
                    flags=("checkout_without_checkin",),
                    checkin_event_id=None,
                    checkout_event_id=s.event_id,
                )
            )
        else:
            out.append(_close(cur, s, rules, (), absorbed))
            cur = None
    if cur is not None:
        if watermark is not None and watermark >= rules.deadline(cur.at):
            out.append(_auto_close(cur, rules, absorbed))
        else:
            out.append(
                Derived(
                    session_id=derived_id("session", cur.event_id),
                    opening=cur,
                    start=cur.at,
                    end=None,
                    credited_seconds=0,
                    status="open",
                    checkin_event_id=cur.event_id,
                    checkout_event_id=None,
                    absorbed=tuple(absorbed),
                )
            )
    return out


def _close(
    o: Scan, s: Scan, rules: SessionRules, flags: tuple[str, ...], absorbed: list[str]
) -> Derived:
    duration = s.at - o.at
    capped = duration > rules.cap
    credited = int((rules.cap if capped else duration).total_seconds())
    return Derived(
        session_id=derived_id("session", o.event_id),
        opening=o,
        start=o.at,
        end=s.at,
        credited_seconds=credited,
        status="capped" if capped else "closed",
        flags=_minimum((*flags, "over_cap") if capped else flags, credited, rules),
        checkin_event_id=o.event_id,
        checkout_event_id=s.event_id,
        absorbed=tuple(absorbed),
    )


def _minimum(flags: tuple[str, ...], credited: int, rules: SessionRules) -> tuple[str, ...]:
    if credited < rules.week_minimum.total_seconds():
        return (*flags, counting.BELOW_MINIMUM_FLAG)
    return flags


def _auto_close(o: Scan, rules: SessionRules, absorbed: list[str]) -> Derived:
    credited = int(rules.forgotten_checkout_credit.total_seconds())
    return Derived(
        session_id=derived_id("session", o.event_id),
        opening=o,
        start=o.at,
        end=end_of_local_day(o.at),
        credited_seconds=credited,
        status="auto_closed",
        flags=_minimum(("forgotten_checkout",), credited, rules),
        checkin_event_id=o.event_id,
        checkout_event_id=None,
        absorbed=tuple(absorbed),
    )


def reviewed(
    status: SessionStatus, credited: int, scan_flags: tuple[str, ...], review: Review | None
) -> tuple[SessionStatus, int, list[str]]:
    """The status, credit and flags after the latest review (the scans' flags stay visible)."""
    flags = list(scan_flags)
    if review is None:
        return status, credited, flags
    if review.action == "approve":
        return status, credited, [*flags, "approved"]
    if review.action == "adjust":
        return "adjusted", review.credited_seconds or 0, [*flags, "adjusted"]
    return "rejected", 0, [*flags, "rejected"]


def _record(
    member_id: str, base: Derived, review: Review | None, revision: int, voided: bool = False
) -> SessionRecorded:
    status, credited, flags = reviewed(base.status, base.credited_seconds, base.flags, review)
    o = base.opening
    return SessionRecorded(
        event_id=derived_id("session", base.session_id, str(revision)),
        occurred_at=base.end or base.start,
        session_id=base.session_id,
        revision=revision,
        member_id=member_id,
        unit_id=o.unit_id,
        member_community_id=o.member_community_id,
        member_grid_id=o.member_grid_id,
        station_id=o.station_id,
        station_community_id=o.station_community_id,
        start=base.start,
        end=base.end,
        credited_seconds=credited,
        status=status,
        flags=flags,
        checkin_event_id=base.checkin_event_id,
        checkout_event_id=base.checkout_event_id,
        voided=voided,
        absorbed_event_ids=list(base.absorbed),
    )


def _revise(
    kept: Kept, review: Review | None, revision: int, voided: bool = False
) -> SessionRecorded:
    """A new revision of a kept session, from its scans' status and credit and `review`."""
    status, credited, flags = reviewed(kept.status, kept.credited_seconds, kept.flags, review)
    return kept.last.model_copy(
        update={
            "event_id": derived_id("session", kept.last.session_id, str(revision)),
            "revision": revision,
            "status": status,
            "credited_seconds": credited,
            "flags": flags,
            "voided": voided,
        }
    )


# What a new revision of a session changes even when nothing else did.
_REVISION_FIELDS = frozenset({"event_id", "revision", "occurred_at"})


def _same(a: SessionRecorded, b: SessionRecorded) -> bool:
    # Field by field on the instances' values: model_dump() serialised both records for every
    # session of the horizon on every scan (~5% of the worker).
    da, db = a.__dict__, b.__dict__
    return da.keys() == db.keys() and all(da[k] == db[k] for k in da if k not in _REVISION_FIELDS)


def contributes(r: SessionRecorded) -> tuple[int, int]:
    """(sessions, seconds) a session adds to its week: the same rule the warehouse reads use."""
    return counting.contribution(r.status, r.flags, r.voided, r.credited_seconds)


def week_key(r: SessionRecorded) -> str:
    """A session's weekly total: its ISO week, its station and whose service it was (the unit,
    community and grid the member had when it began: the session's, never the week's)."""
    return _attributed(
        f"{iso_week(r.start)}|{r.station_id}", r.unit_id, r.member_community_id, r.member_grid_id
    )


def _attributed(week_station: str, unit_id: str, community_id: str, grid_id: str | None) -> str:
    return f"{week_station}|{unit_id}|{community_id}|{grid_id or ''}"


def week_record_key(e: MemberWeekRecorded) -> str:
    """The key of a member week's record on Kafka and among a batch's records: one per member
    and `week_key`."""
    return f"{e.member_id}|" + _attributed(
        f"{e.week}|{e.station_id}", e.unit_id, e.member_community_id, e.member_grid_id
    )


# --- state transitions ----------------------------------------------------------------------


def _replay(state: MemberState, session_ids: set[str] | None = None) -> list[Event]:
    """The latest records again, for an event already applied: if the worker died after saving
    the state but before its output reached Kafka, this redelivery publishes it. Downstream keys
    on (session, revision) and (member, week, station, version), so repeats are harmless."""
    out: list[Event] = []
    keys: set[str] = set()
    for sid, k in state.sessions.items():
        if (session_ids is None and k.live) or (session_ids is not None and sid in session_ids):
            out.append(k.last)
            keys.add(week_key(k.last))
    out.extend(
        _week_event(state.member_id, key, state.weeks[key])
        for key in sorted(keys)
        if key in state.weeks
    )
    return out


def _week_event(member_id: str, key: str, w: WeekTotal) -> MemberWeekRecorded:
    week, station_id = key.split("|")[:2]
    as_of = w.as_of or _EPOCH
    return MemberWeekRecorded(
        event_id=derived_id("member_week", member_id, key, str(w.version)),
        occurred_at=as_of,
        member_id=member_id,
        week=week,
        station_id=station_id,
        station_community_id=w.station_community_id,
        member_community_id=w.member_community_id,
        member_grid_id=w.member_grid_id,
        unit_id=w.unit_id,
        sessions=w.sessions,
        credited_seconds=w.seconds,
        version=w.version,
        as_of=as_of,
    )


def _commit(
    state: MemberState, changed: list[tuple[SessionRecorded | None, SessionRecorded, Kept]]
) -> tuple[MemberState, list[Event]]:
    """Stores the changed sessions and moves their weekly totals by the difference."""
    if not changed:
        return state, []
    sessions = dict(state.sessions)
    weeks = dict(state.weeks)
    version = state.week_version
    touched: list[str] = []
    out: list[Event] = []
    for old, new, kept in changed:
        sessions[new.session_id] = kept
        out.append(new)
        for rec, sign in ((old, -1), (new, 1)):
            if rec is None:
                continue
            n, secs = contributes(rec)
            key = week_key(rec)
            w = weeks.get(key, WeekTotal())
            update: dict[str, object] = {
                "sessions": w.sessions + sign * n,
                "seconds": w.seconds + sign * secs,
            }
            if sign > 0 or not w.unit_id:
                # Where the latest session of that week at that station was earned.
                update.update(
                    station_community_id=rec.station_community_id,
                    member_community_id=rec.member_community_id,
                    member_grid_id=rec.member_grid_id,
                    unit_id=rec.unit_id,
                )
            weeks[key] = w.model_copy(update=update)
            if key not in touched:
                touched.append(key)
    for key in touched:
        version += 1
        weeks[key] = weeks[key].model_copy(update={"version": version, "as_of": state.watermark})
        out.append(_week_event(state.member_id, key, weeks[key]))
    return state.model_copy(
        update={"sessions": sessions, "weeks": weeks, "week_version": version}
    ), out


def _rebuild(
    state: MemberState, rules: SessionRules, reviewed_now: str | None = None
) -> tuple[MemberState, list[Event]]:
    """Re-derives the member's sessions; `reviewed_now`: a session whose review just changed."""
    derived = with_presence(derive(state.scans, state.watermark, rules), state.scans, rules)
    changed: list[tuple[SessionRecorded | None, SessionRecorded, Kept]] = []
    seen: set[str] = set()
    for d in derived:
        seen.add(d.session_id)
        kept = state.sessions.get(d.session_id)
        if (
            kept is not None
            and kept.live
            and not kept.last.voided
            and d.session_id != reviewed_now
            and kept.made_by(d)
        ):
            # The same scans made the same session and its review did not change: its record
            # would be the one kept. Most sessions of the horizon are like this on each scan.
            continue
        review = state.reviews.get(d.session_id)
        rev = kept.last.revision + 1 if kept else 1
        rec = _record(state.member_id, d, review, rev)
        if kept is None or not _same(kept.last, rec) or not kept.live:
            changed.append((kept.last if kept else None, rec, Kept.of(d, rec)))
    for sid, kept in state.sessions.items():
        if kept.live and sid not in seen and not kept.last.voided:
            # Re-pairing made this session disappear (a late scan joined it to another one).
            rec = _revise(kept, state.reviews.get(sid), kept.last.revision + 1, voided=True)
            changed.append((kept.last, rec, kept.model_copy(update={"last": rec})))
    state, out = _commit(state, changed)
    return _finalize(state, derived, rules), out


def _finalize(state: MemberState, derived: list[Derived], rules: SessionRules) -> MemberState:
    """Drops scans (and re-pairing) for sessions no late scan can reach any more, and forgets
    sessions past the review window. Keeps the state of an active member small."""
    if state.watermark is None:
        return state
    cutoff = state.watermark - rules.rederive_horizon
    boundary = cutoff
    for d in derived:
        if d.end is None or d.end >= cutoff or d.status == "open":
            boundary = min(cutoff, d.start)
            break
    keep_from = bisect.bisect_left([s.at for s in state.scans], boundary)
    dropped = state.scans[:keep_from]
    sessions = {
        sid: (k.model_copy(update={"live": False}) if k.live and k.last.start < boundary else k)
        for sid, k in state.sessions.items()
        if k.last.start >= state.watermark - rules.review_window
    }
    old_weeks = {week_key(k.last) for k in sessions.values()}
    review_floor = state.watermark - rules.review_window
    return state.model_copy(
        update={
            "scans": state.scans[keep_from:],
            "floor": max(boundary, state.floor) if state.floor else boundary,
            "dropped_ids": (*state.dropped_ids, *(s.event_id for s in dropped))[-RECENT_IDS:],
            "sessions": sessions,
            "weeks": {k: w for k, w in state.weeks.items() if k in old_weeks},
            "reviews": {
                sid: r
                for sid, r in state.reviews.items()
                if sid in sessions or r.at >= review_floor
            },
        }
    )


def _advance(state: MemberState, *times: datetime | None) -> MemberState:
    marks = [t for t in (state.watermark, *times) if t is not None]
    return state.model_copy(update={"watermark": max(marks)}) if marks else state


def on_scan(
    state: MemberState, scan: CheckinScanned, rules: SessionRules, clock: datetime | None = None
) -> tuple[MemberState, list[Event]]:
    """A scan: re-pair the member's recent scans. `clock` is the partition's latest tick."""
    if any(s.event_id == scan.event_id for s in state.scans) or scan.event_id in state.dropped_ids:
        return state, _replay(state)
    if state.floor is not None and scan.occurred_at < state.floor:
        raise LateScan(
            f"scan {scan.event_id} at {scan.occurred_at.isoformat()} is older than the sessions "
            f"this member's state can still re-pair (from {state.floor.isoformat()})"
        )
    s = Scan.of(scan)
    scans = list(state.scans)
    bisect.insort(scans, s, key=lambda x: (x.at, x.event_id))
    state = _advance(
        state.model_copy(update={"member_id": scan.member_id, "scans": tuple(scans)}),
        scan.received_at,
        clock,
    )
    return _rebuild(state, rules)


def on_review(
    state: MemberState, review: SessionReviewed, rules: SessionRules
) -> tuple[MemberState, list[Event]]:
    if review.review_id in state.applied_reviews:
        return state, _replay(state, {review.session_id})
    prior = state.reviews.get(review.session_id)
    r = Review(
        review_id=review.review_id,
        action=review.action,
        credited_seconds=review.credited_seconds,
        at=review.occurred_at,
    )
    state = state.model_copy(
        update={
            "member_id": review.member_id,
            "applied_reviews": (*state.applied_reviews, review.review_id)[-RECENT_IDS:],
        }
    )
    if prior is not None and (prior.at, prior.review_id) > (r.at, r.review_id):
        # An older decision delivered late: the newer one stands, whatever the arrival order.
        return state, []
    state = state.model_copy(update={"reviews": {**state.reviews, review.session_id: r}})
    kept = state.sessions.get(review.session_id)
    if kept is None:
        # Not derived yet (a replay may deliver the review before the scans): kept for then.
        return state, []
    if kept.live:
        return _rebuild(state, rules, reviewed_now=review.session_id)
    rec = _revise(kept, r, kept.last.revision + 1)
    if _same(kept.last, rec):
        return state, []
    return _commit(state, [(kept.last, rec, kept.model_copy(update={"last": rec}))])


def on_clock(
    state: MemberState, tick_id: str, at: datetime, rules: SessionRules
) -> tuple[MemberState, list[Event]]:
    """Time passed: open sessions whose deadline is behind `at` are closed as forgotten."""
    if state.last_tick == tick_id:
        return state, _replay(state)
    state = _advance(state, at).model_copy(update={"last_tick": tick_id})
    return _rebuild(state, rules)


def latest_records(out: list[Event]) -> list[Event]:
    """Of the records a batch produced, each session's latest revision and each member week's
    latest version, in first-seen order. Readers keep only the latest (ReplacingMergeTree on
    revision and version), so the superseded ones would be written only to be discarded."""
    latest: dict[tuple[str, str], Event] = {}
    for e in out:
        if isinstance(e, SessionRecorded):
            key = ("session", e.session_id)
            kept = latest.get(key)
            if kept is None or e.revision >= kept.revision:  # type: ignore[attr-defined]
                latest[key] = e
        elif isinstance(e, MemberWeekRecorded):
            key = ("week", week_record_key(e))
            kept = latest.get(key)
            if kept is None or e.version >= kept.version:  # type: ignore[attr-defined]
                latest[key] = e
        else:
            latest[("other", e.event_id)] = e
    return list(latest.values())
