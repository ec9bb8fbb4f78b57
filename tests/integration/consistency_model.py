"""The pure side of the consistency proof (issue 12, part 4): generated scan histories and what
every read must say about them, computed in-process with the session rules.

Nothing here touches the network: `tests/integration/test_consistency.py` plays a `History`
through the real stack and compares each read with `expected_reads`; the unit tests in
`tests/unit/test_consistency_model.py` check the generator and the model alone.

The rules of the game, each stated once here, so a disagreement about a rule is one edit:

- Sessions, their status and credit come from the pure session rules (`on_scan`, `on_review`,
  `on_clock` of `services.sessions`); a session adds `contribution(r)` = (counted sessions,
  credited seconds) to every total.
- Hours and sessions belong to the calendar year of the session's local start date
  (Asia/Shanghai); weeks are ISO weeks of the local start date (a week belongs to the year of its
  Thursday), so the assessment's active weeks of year Y are the ISO weeks of week-year Y.
- Service belongs to the unit, community and grid the member had when it was done (the time of
  the session's opening scan), not to the member's current ones and not to the week.
- What a session adds is restated here, on purpose, from the session's own figures rather than
  imported (`contribution`): voided, open and rejected sessions add nothing; every other one
  adds its credited seconds; it counts as a service (a session counted, a week served, an active
  week) when an organizer adjusted it, or when it is no check-out without a check-in and was
  credited at least `WEEK_MINIMUM_S` (30 minutes, the default of WEEK_MIN_CREDITED_MIN) or
  approved. The pairing rules flag such sessions (`below_minimum`); the model ignores the flag
  and compares the seconds, so a flag missing or stamped wrongly shows as a difference.
- "Registered" in a week: active members whose registry entry at the end of that week (or now,
  for the current week) names the community / grid / unit; "served": members with at least one
  counted session of that week attributed to it; hours: the credited seconds attributed to it.
- Every hours figure is the total's seconds / 3600 rounded to 2 decimals, rounded once, from
  its own seconds; parts shown beside a total agree with it up to rounding
  (`services.counting.parts_agree`), they need not add up to it.
- A scan someone else made for the member (an organizer or a station's tablet: 代签到; the
  member's team leader: 团队签到) is a scan like the member's own: the session it opens or
  closes credits and counts exactly as if the member had made it, is flagged `assisted` or
  `team` with `by:<who>` for each such scan, and goes to the review queue only for the reasons
  any session does (a forgotten check-out, over the cap, a check-out without a check-in, below
  the weekly minimum), never for being made by someone else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from hypothesis import strategies as st

from services.events import CheckinScanned, SessionRecorded, SessionReviewed, derived_id
from services.timeutil import iso_week, local, local_midnight

try:
    from services.sessions import (  # type: ignore[import-not-found,unused-ignore]
        MemberState,
        SessionRules,
        on_clock,
        on_review,
        on_scan,
    )
except ImportError:  # before the pure rules moved into the core (issue 12, part 1)
    from streams.sessions import (
        MemberState,
        SessionRules,
        on_clock,
        on_review,
        on_scan,
    )

# How far back the module's stack accepts and re-pairs scans: far enough to reach the last turn
# of the year, where the calendar year and the ISO week-year of a day differ.
MAX_SCAN_AGE_H = 9000
RULES = SessionRules(
    rederive_horizon=timedelta(hours=MAX_SCAN_AGE_H + 200),
    review_window=timedelta(days=400),
)

# --- the plan: what hypothesis draws (small, shrinkable values) ---------------------------

# Days a scan may fall on, relative to the run's local date: today (this ISO week), the days
# just before (often last week), a week ago, and the last turn of the year: 29-31 December
# lie in the ISO week-year after their calendar year; 1-3 January may lie in the one before.
DAYS: tuple[tuple[str, int], ...] = (
    ("ago", 0),
    ("ago", 1),
    ("ago", 2),
    ("ago", 3),
    ("ago", 8),
    ("turn", -3),  # 29 December
    ("turn", -1),  # 31 December
    ("turn", 0),  # 1 January
    ("turn", 2),  # 3 January
)
# Station slots: 0 and 1 are the first community's stations, 2 the second's: a member of either
# community serves at times at the other's.
STATIONS = 3
Action = Literal["in", "out"]
Tap = Literal["once", "double", "resend"]
# Who made the scan: the member's phone, the community's organizer or the station's tablet for
# the member (代签到, `assisted`), the member's team leader (团队签到, `team`).
By = Literal["self", "organizer", "station", "team"]
# The community (0 or 1, as `MemberPlan.home`) of each station slot.
STATION_HOME = (0, 0, 1)


@dataclass(frozen=True)
class ScanPlan:
    day: int  # index into DAYS
    minute: int  # local minute of the day
    station: int  # index into the world's stations
    action: Action
    # "double": a second tap a few seconds later (a new scan); "resend": the phone re-sends the
    # same scan (the same client_event_id) after it arrived.
    tap: Tap = "once"
    # Who made it. An organizer or a tablet checks in only members of the station's community;
    # a team leader at any station (`helper`).
    by: By = "self"


@dataclass(frozen=True)
class MemberPlan:
    home: int = 0  # 0 or 1: the member's first unit, community and grid
    scans: tuple[ScanPlan, ...] = ()
    # Moved to the other unit, community and grid after the reviews; then `late` scans (made
    # before the move, queued offline) arrive, and a short session is served right after it.
    move: bool = False
    late: tuple[ScanPlan, ...] = ()
    after_move: int | None = None  # station of a session served just after the move


@dataclass(frozen=True)
class ReviewPlan:
    member: int
    session: int  # index (modulo) into the member's reviewable sessions, by start
    action: Literal["approve", "adjust", "reject"]
    quarter_hours: int = 0  # an adjust's credit


@dataclass(frozen=True)
class CampaignPlan:
    first_day: int  # index into DAYS; the campaign runs from that local midnight ...
    days: int  # ... for this many days
    members: tuple[int, ...]  # assigned directly (grid 0)
    unit: bool  # unit 1 sent in as a whole (grid 0)
    community_stations: bool


@dataclass(frozen=True)
class History:
    members: tuple[MemberPlan, ...]
    # The order the first scans reach the server: a permutation of all members' `scans`, in
    # member order (late offline scans arrive in any order).
    arrival: tuple[int, ...]
    reviews: tuple[ReviewPlan, ...] = ()
    campaign: CampaignPlan | None = None
    # Excused weeks (请假): (member, day index into DAYS: its ISO week, approved or declined). An
    # approved week is neither served nor missed unless the member served it (served wins).
    excused: tuple[tuple[int, int, bool], ...] = ()

    def first_scans(self) -> list[tuple[int, ScanPlan]]:
        flat = [(i, s) for i, m in enumerate(self.members) for s in m.scans]
        return [flat[k] for k in self.arrival]


scan_plans = st.builds(
    ScanPlan,
    day=st.integers(0, len(DAYS) - 1),
    minute=st.integers(0, 24 * 60 - 1),
    station=st.integers(0, STATIONS - 1),
    action=st.sampled_from(["in", "out"]),
    tap=st.sampled_from(["once", "once", "double", "resend"]),
)

member_plans = st.builds(
    MemberPlan,
    home=st.integers(0, 1),
    scans=st.lists(scan_plans, max_size=8).map(tuple),
    move=st.booleans(),
    late=st.lists(scan_plans, max_size=3).map(tuple),
    after_move=st.none() | st.integers(0, STATIONS - 1),
)


@st.composite
def histories(draw: st.DrawFn, max_members: int = 3) -> History:
    members = tuple(draw(st.lists(member_plans, min_size=1, max_size=max_members)))
    n = sum(len(m.scans) for m in members)
    arrival = tuple(draw(st.permutations(range(n))))
    reviews = tuple(
        draw(
            st.lists(
                st.builds(
                    ReviewPlan,
                    member=st.integers(0, len(members) - 1),
                    session=st.integers(0, 7),
                    action=st.sampled_from(["approve", "adjust", "reject"]),
                    quarter_hours=st.integers(0, 24),
                ),
                max_size=3,
            )
        )
    )
    campaign = draw(
        st.none()
        | st.builds(
            CampaignPlan,
            first_day=st.integers(0, len(DAYS) - 1),
            days=st.integers(1, 10),
            members=st.lists(st.integers(0, len(members) - 1), unique=True).map(tuple),
            unit=st.booleans(),
            community_stations=st.booleans(),
        )
    )
    # Derived, not drawn: a draw more would change every example drawn after the first, and
    # the examples the suite has always run are kept as they were. Each member with scans is
    # excused for the week of a day of theirs (approved or declined by turns) and, approved, for
    # another day's week, served there or not.
    members = helped(members)
    excused = tuple(
        x
        for i, m in enumerate(members)
        if m.scans or m.late
        for x in (
            (i, (m.scans or m.late)[0].day, (i + len(m.scans)) % 2 == 0),
            (i, (i * 4 + len(m.late)) % len(DAYS), True),
        )
    )
    return History(
        members=members, arrival=arrival, reviews=reviews, campaign=campaign, excused=excused
    )


# Who makes the k-th first scan of member i, by turns: half the members' own, the rest by an
# organizer, a team leader or a station's tablet.
HELPERS: tuple[By, ...] = ("self", "organizer", "self", "team", "self", "station")


def helped(members: tuple[MemberPlan, ...]) -> tuple[MemberPlan, ...]:
    """The members' first scans, some made for them by someone else. Derived from what was
    drawn, not drawn (as the excused weeks): the examples drawn stay the same examples; only who
    made some of their scans differs, which must change no figure. Late (offline) scans and the
    session after a move stay the member's own: only a phone queues scans."""
    return tuple(
        replace(
            m,
            scans=tuple(
                replace(p, by=helper(HELPERS[(i + k) % len(HELPERS)], m.home, p.station))
                for k, p in enumerate(m.scans)
            ),
        )
        for i, m in enumerate(members)
    )


def helper(by: By, home: int, station: int) -> By:
    """Who may make the scan: an organizer or a station's tablet check in members of the
    station's community only (the assisted routes refuse others); a team leader anywhere."""
    if by in ("organizer", "station") and STATION_HOME[station] != home:
        return "team"
    return by


# --- turning the plan into instants ---------------------------------------------------------


def day_of(index: int, now: datetime) -> date:
    kind, n = DAYS[index]
    today = local(now).date()
    if kind == "ago":
        return today - timedelta(days=n)
    # The last 1 January at least four days ago, so the days around it lie in the past.
    jan1 = date((today - timedelta(days=4)).year, 1, 1)
    return jan1 + timedelta(days=n)


def scan_time(p: ScanPlan, now: datetime) -> datetime:
    """The plan's instant, always a little in the past (today's minutes wrap before now)."""
    d = day_of(p.day, now)
    midnight = local_midnight(d)
    elapsed = int((now - midnight).total_seconds() // 60) - 5
    # Today's minutes are squeezed into the part of the day already past, keeping their order.
    minute = p.minute if elapsed >= 24 * 60 else p.minute * max(elapsed, 0) // (24 * 60)
    return midnight + timedelta(minutes=minute)


# --- the registry the model needs -----------------------------------------------------------


@dataclass(frozen=True)
class Place:
    unit_id: str
    community_id: str
    grid_id: str


@dataclass
class MemberLife:
    """A member's registry entries over time: (valid from, place); the first from the epoch."""

    member_id: str
    versions: list[tuple[datetime, Place]]

    def at(self, t: datetime) -> Place:
        place = self.versions[0][1]
        for since, p in self.versions:
            if since <= t:
                place = p
        return place


@dataclass
class World:
    """The registry of one example: fresh ids, so examples never share a total."""

    units: list[str]
    communities: list[str]
    grids: list[str]  # grids[i] is the level-4 grid of communities[i]
    stations: list[tuple[str, str]]  # (station id, its community id)
    members: list[MemberLife] = field(default_factory=list)

    def place(self, home: int) -> Place:
        return Place(self.units[home], self.communities[home], self.grids[home])


# --- the model: the same events through the pure rules --------------------------------------


Stamp = Literal["arrival", "done"]


@dataclass
class SentScan:
    member: int
    client_event_id: str
    station: int
    action: Action
    at: datetime
    received_at: datetime
    # Made for the member by someone else: `assisted` or `team`, and who (`organizer:<c>`,
    # `station:<s>`, `member:<leader>`), as the assisted and team routes write them.
    assist: Literal["assisted", "team"] | None = None
    assisted_by: str | None = None


@dataclass
class SentReview:
    member: int
    review_id: str
    session_id: str
    action: Literal["approve", "adjust", "reject"]
    credited_seconds: int | None
    at: datetime


@dataclass
class Log:
    """What was sent, in the order the server accepted it (scans and reviews interleaved)."""

    items: list[SentScan | SentReview] = field(default_factory=list)


def checkin_event(world: World, s: SentScan, stamp: Stamp) -> CheckinScanned:
    """The event the API writes for `s`. `stamp`: whose registry entry the scan carries: the
    one when it reached the server (what the API does) or the one when it was made (the rule)."""
    life = world.members[s.member]
    place = life.at(s.received_at if stamp == "arrival" else s.at)
    station_id, station_community = world.stations[s.station]
    return CheckinScanned(
        event_id=checkin_id(life.member_id, s),
        occurred_at=s.at,
        member_id=life.member_id,
        station_id=station_id,
        station_community_id=station_community,
        unit_id=place.unit_id,
        member_community_id=place.community_id,
        member_grid_id=place.grid_id,
        action=s.action,
        client_event_id=s.client_event_id,
        received_at=s.received_at,
        assist=s.assist,
        assisted_by=s.assisted_by if s.assist is not None else None,
    )


def checkin_id(member_id: str, s: SentScan) -> str:
    """The scan's event id as the API derives it: from the member and the phone's id, and for a
    scan made by someone else from who made it too (api/routers/assisted.py)."""
    if s.assist is not None and s.assisted_by is not None:
        return derived_id("checkin", member_id, s.assisted_by, s.client_event_id)
    return derived_id("checkin", member_id, s.client_event_id)


def helpers_of(world: World, log: Log) -> dict[str, tuple[str, str]]:
    """Each scan made for a member by someone else: event id -> (assisted/team, who)."""
    return {
        checkin_id(world.members[s.member].member_id, s): (s.assist, s.assisted_by)
        for s in log.items
        if isinstance(s, SentScan) and s.assist is not None and s.assisted_by is not None
    }


def reviewed_ids(log: Log) -> set[str]:
    return {r.session_id for r in log.items if isinstance(r, SentReview)}


def run_model(world: World, log: Log, now: datetime, stamp: Stamp) -> dict[int, MemberState]:
    """Each member's state after the log and a clock tick at `now`."""
    states: dict[int, MemberState] = {i: MemberState() for i in range(len(world.members))}
    for item in log.items:
        st_ = states[item.member]
        if isinstance(item, SentScan):
            st_, _ = on_scan(st_, checkin_event(world, item, stamp), RULES)
        else:
            review = SessionReviewed(
                event_id=derived_id("review", item.review_id),
                occurred_at=item.at,
                review_id=item.review_id,
                session_id=item.session_id,
                member_id=world.members[item.member].member_id,
                station_community_id="",
                action=item.action,
                credited_seconds=item.credited_seconds,
                reason="model",
                reviewer_role="admin",
                reviewer_id="admin",
            )
            st_, _ = on_review(st_, review, RULES)
        states[item.member] = st_
    return {
        i: on_clock(s, f"tick-{now.isoformat()}", now, RULES)[0] if s.member_id else s
        for i, s in states.items()
    }


def records(state: MemberState) -> list[SessionRecorded]:
    """Every session the member's state holds (voided ones included), by start."""
    return sorted((k.last for k in state.sessions.values()), key=lambda r: (r.start, r.session_id))


def reviewable(state: MemberState) -> list[SessionRecorded]:
    return [r for r in records(state) if not r.voided and r.status != "open"]


def hours(seconds: int) -> float:
    return round(seconds / 3600, 2)


def year_of(r: SessionRecorded) -> int:
    return local(r.start).year


def week_of(r: SessionRecorded) -> str:
    return iso_week(r.start)


def week_end(week: str) -> datetime:
    y, w = int(week[:4]), int(week[6:])
    return local_midnight(date.fromisocalendar(y, w, 7) + timedelta(days=1))


# --- what every read must say ---------------------------------------------------------------

# The weekly minimum of the module's stack (the default WEEK_MIN_CREDITED_MIN, 30 minutes).
WEEK_MINIMUM_S = 30 * 60


def contribution(r: SessionRecorded) -> tuple[int, int]:
    """(sessions, seconds) a session adds: the rule restated (see the module docstring)."""
    if r.voided or r.status in ("open", "rejected"):
        return 0, 0
    seconds = r.credited_seconds
    if r.status == "adjusted":
        return 1, seconds
    if "checkout_without_checkin" in r.flags:
        return 0, seconds
    if seconds < WEEK_MINIMUM_S and "approved" not in r.flags:
        return 0, seconds
    return 1, seconds


@dataclass
class Totals:
    sessions: int = 0
    seconds: int = 0
    served: set[str] = field(default_factory=set)

    def add(self, r: SessionRecorded) -> None:
        n, s = contribution(r)
        self.sessions += n
        self.seconds += s
        if n:
            self.served.add(r.member_id)


def totals(rs: Iterable[SessionRecorded]) -> Totals:
    t = Totals()
    for r in rs:
        t.add(r)
    return t


def needs_review(r: SessionRecorded) -> bool:
    """Why a session waits for the organizer, restated from its figures: a forgotten check-out
    (closed by the clock), over the cap, a check-out without a check-in, credited below the
    weekly minimum. Who made its scans is no reason."""
    return (
        r.status in ("auto_closed", "capped")
        or r.checkin_event_id is None
        or r.credited_seconds < WEEK_MINIMUM_S
    )


def helper_flags(r: SessionRecorded, helpers: dict[str, tuple[str, str]]) -> list[str]:
    """The flags a session carries for the scans someone else made: `assisted` / `team` and
    `by:<who>` for its check-in and its check-out (the scans that open and close it)."""
    out: set[str] = set()
    for e in (r.checkin_event_id, r.checkout_event_id):
        if e is not None and e in helpers:
            kind, by = helpers[e]
            out |= {kind, f"by:{by}"}
    return sorted(out)


def is_helper_flag(f: str) -> bool:
    return f in ("assisted", "team") or f.startswith("by:")


def session_view(r: SessionRecorded) -> dict[str, Any]:
    """A session as `GET /v1/members/{id}/sessions` lists it."""
    return {
        "id": r.session_id,
        "station_id": r.station_id,
        "start": r.start.astimezone(UTC),
        "end": r.end.astimezone(UTC) if r.end else None,
        "hours": hours(r.credited_seconds),
        "status": r.status,
        "flags": list(r.flags),
    }


@dataclass
class Expected:
    """Figures every read must show, keyed as the test asks for them."""

    reads: dict[tuple[str, ...], Any]
    years: set[int]
    weeks: set[str]


def expected_reads(
    world: World,
    states: dict[int, MemberState],
    now: datetime,
    campaign: Any | None = None,
    approved: dict[str, set[str]] | None = None,
    helpers: dict[str, tuple[str, str]] | None = None,
    reviewed: set[str] | None = None,
) -> Expected:
    """Every read's expected figures. `campaign`: (starts_at, ends_at, community id,
    count_community_stations, {member id: grid id} assigned directly, {unit id: grid id},
    the assignments' grid ids in order). `approved`: each member's approved excused weeks.
    `helpers`: the scans made by someone else (`helpers_of`); `reviewed`: the sessions an
    organizer decided on (`reviewed_ids`)."""
    approved = approved or {}
    helpers = helpers or {}
    reviewed = reviewed or set()
    live: list[SessionRecorded] = [
        r for i in sorted(states) for r in records(states[i]) if not r.voided
    ]
    scans_by_member = {
        world.members[i].member_id: [s for s in states[i].scans] for i in sorted(states)
    }
    this_week = iso_week(now)
    years = {year_of(r) for r in live} | {local(now).year}
    weeks = {week_of(r) for r in live} | {this_week} | {w for ws in approved.values() for w in ws}
    out: dict[tuple[str, ...], Any] = {}

    for life in world.members:
        m = life.member_id
        mine = [r for r in live if r.member_id == m]
        for y in years:
            in_year = [r for r in mine if year_of(r) == y]
            t = totals(in_year)
            out[("hours", m, str(y))] = {"hours": hours(t.seconds), "sessions": t.sessions}
            by_week: dict[str, Totals] = defaultdict(Totals)
            by_month: dict[str, Totals] = defaultdict(Totals)
            for r in in_year:
                by_week[week_of(r)].add(r)
                by_month[local(r.start).strftime("%Y-%m")].add(r)
            out[("breakdown", m, str(y))] = {
                "hours": hours(t.seconds),
                "sessions": t.sessions,
                "by_week": [
                    {"period": k, "hours": hours(v.seconds), "sessions": v.sessions}
                    for k, v in sorted(by_week.items())
                    if v.sessions or v.seconds
                ],
                "by_month": [
                    {"period": k, "hours": hours(v.seconds), "sessions": v.sessions}
                    for k, v in sorted(by_month.items())
                    if v.sessions or v.seconds
                ],
            }
            # A record of the calendar year certifies what the year's hours say.
            out[("record", m, str(y))] = {"hours": hours(t.seconds), "sessions": t.sessions}
        week_rs = [r for r in mine if week_of(r) == this_week]
        t = totals(week_rs)
        scans = scans_by_member[m]
        out[("week", m)] = {
            "week": this_week,
            "served": t.sessions > 0,
            "sessions": t.sessions,
            "hours": hours(t.seconds),
            "open_session": any(r.status == "open" for r in week_rs),
            "excused": this_week in approved.get(m, ()) and t.sessions == 0,
            "scans": sum(1 for s in scans if iso_week(s.at) == this_week),
        }
        for w in weeks:
            in_week = [r for r in mine if week_of(r) == w]
            t = totals(in_week)
            per_station: dict[str, Totals] = defaultdict(Totals)
            for r in in_week:
                per_station[r.station_id].add(r)
            out[("weekly", m, w)] = {
                "sessions": t.sessions,
                "hours": hours(t.seconds),
                "target_met": t.sessions >= 1,
                "excused": w in approved.get(m, ()) and t.sessions == 0,
                "stations": [
                    {"station_id": k, "sessions": v.sessions, "hours": hours(v.seconds)}
                    for k, v in sorted(per_station.items())
                    if v.sessions or v.seconds
                ],
            }
        out[("sessions", m)] = [
            session_view(r)
            for r in sorted(mine, key=lambda r: (-r.start.timestamp(), r.session_id))
        ]
        # Who made each session's scans, as the organizer reads the member's sessions.
        out[("helped", m)] = {r.session_id: helper_flags(r, helpers) for r in mine}
        # The assessment of each unit the member served or belongs to, each year.
        for unit in world.units:
            for y in years:
                rs = [r for r in mine if r.unit_id == unit]
                t = totals(r for r in rs if year_of(r) == y)
                active = {week_of(r) for r in rs if contribution(r)[0] and int(week_of(r)[:4]) == y}
                # Approved weeks of the year up to now (the member reported in 2020), not served
                # for this unit: out of the required weeks.
                last_week = date(y, 12, 28).isocalendar()[1]
                as_of = min(local(now).date(), date.fromisocalendar(y, last_week, 7))
                excused_weeks = {
                    w
                    for w in approved.get(m, ())
                    if int(w[:4]) == y
                    and w not in active
                    and week_end(w) - timedelta(days=7) <= local_midnight(as_of)
                }
                row = {
                    "hours": hours(t.seconds),
                    "sessions": t.sessions,
                    "active_weeks": len(active),
                    "excused_weeks": len(excused_weeks),
                }
                # A former unit lists the member with any time served for it, counted or not,
                # and with a week served for it in the year's ISO weeks (29-31 December served
                # for it count in the next year's weeks though their hours are the year's).
                listed = (
                    life.at(now).unit_id == unit or t.sessions > 0 or t.seconds > 0 or bool(active)
                )
                out[("assessment", m, unit, str(y))] = (listed, row)

    def registered(w: str, key: str, value: str) -> set[str]:
        at = min(week_end(w), now)
        return {
            life.member_id
            for life in world.members
            if getattr(life.at(at - timedelta(microseconds=1)), key) == value
        }

    for c in world.communities:
        # The organizer's review queue: the sessions at the community's stations that wait for
        # a decision (none for being assisted or a team's), with no anomaly (no station has
        # coordinates, no scan a device id, and one member's sessions never overlap).
        out[("review_queue", c)] = {
            r.session_id: []
            for r in live
            if r.station_community_id == c
            and r.status in ("closed", "capped", "auto_closed")
            and needs_review(r)
            and r.session_id not in reviewed
        }

    for w in weeks:
        in_week = [r for r in live if week_of(r) == w]
        for kind, key, attr in (
            ("community", "community_id", "member_community_id"),
            ("grid", "grid_id", "member_grid_id"),
            ("unit", "unit_id", "unit_id"),
        ):
            for value in {getattr(world.place(h), key) for h in (0, 1)}:
                reg = registered(w, key, value)
                t = totals(r for r in in_week if getattr(r, attr) == value)
                # Served: registered members who served for it (a member who served here
                # before moving away this week counts in the hours, not among the served).
                served = t.served & reg
                # Excused: registered, approved for the week, and not served (served wins).
                excused = {x for x in reg - served if w in approved.get(x, ())}
                due = len(reg) - len(excused)
                out[(kind, value, w)] = {
                    "members_registered": len(reg),
                    "members_served": len(served),
                    "excused": len(excused),
                    "rate": round(len(served) / due, 4) if due else 0.0,
                    "hours": hours(t.seconds),
                    "not_served": sorted(reg - served - excused),
                }
        for station_id, community_id in world.stations:
            # The one station-centred read: who served at the station, from anywhere; the rate
            # counts the station's community's registered members among them.
            reg = registered(w, "community_id", community_id)
            t = totals(r for r in in_week if r.station_id == station_id)
            out[("station", station_id, w)] = {
                "members_registered": len(reg),
                "members_served": len(t.served),
                "rate": round(len(t.served & reg) / len(reg), 4) if reg else 0.0,
                "hours": hours(t.seconds),
                "not_served": sorted(reg - t.served),
            }
        for c in world.communities:
            # The organizer's breakdown adds up to the community's week: its members' service
            # at each of its stations, the rest of their service `elsewhere` (so stations +
            # elsewhere = the week's hours = the grids), and apart, `visitors`: other
            # communities' members at its stations (counted in their own communities).
            own = [r for r in in_week if r.member_community_id == c]
            own_stations = [sid for sid, community_id in world.stations if community_id == c]
            station_rows: list[dict[str, Any]] = []
            for station_id in sorted(own_stations):
                t = totals(r for r in own if r.station_id == station_id)
                station_rows.append(
                    {
                        "station_id": station_id,
                        "members_served": len(t.served),
                        "sessions": t.sessions,
                        "hours": hours(t.seconds),
                    }
                )
            reg_c = registered(w, "community_id", c)
            served_c = totals(own).served & reg_c
            grid_rows = []
            for g, community_id in zip(world.grids, world.communities, strict=True):
                if community_id != c:
                    continue
                reg = registered(w, "grid_id", g)
                t = totals(r for r in own if r.member_grid_id == g)
                grid_rows.append(
                    {
                        "grid_id": g,
                        "members_registered": len(reg),
                        "members_served": len(served_c & reg),
                        "hours": hours(t.seconds),
                    }
                )
            elsewhere = totals(r for r in own if r.station_id not in own_stations)
            visitors = totals(
                r for r in in_week if r.member_community_id != c and r.station_id in own_stations
            )
            out[("breakdown_community", c, w)] = {
                "stations": station_rows,
                "grids": grid_rows,
                "elsewhere": {
                    "members_served": len(elsewhere.served),
                    "sessions": elsewhere.sessions,
                    "hours": hours(elsewhere.seconds),
                },
                "visitors": {
                    "members_served": len(visitors.served),
                    "sessions": visitors.sessions,
                    "hours": hours(visitors.seconds),
                },
                "hours": hours(totals(own).seconds),
            }

    if campaign is not None:
        starts_at, ends_at, community_id, community_stations, direct, by_unit, order = campaign
        assigned: dict[str, str] = dict(direct)
        for life in world.members:
            unit_grid = by_unit.get(life.at(now).unit_id)
            if unit_grid is not None:
                assigned.setdefault(life.member_id, unit_grid)
        mine = [
            r
            for r in live
            if starts_at <= r.start < ends_at
            and (
                r.member_id in direct
                or r.unit_id in by_unit
                or (community_stations and r.station_community_id == community_id)
            )
        ]
        t = totals(mine)
        per_member = {m: totals(r for r in mine if r.member_id == m) for m in assigned}
        # Every assigned grid is listed, in the assignments' order, whoever was assigned to it.
        grids: dict[str, dict[str, Any]] = {
            g: {"grid_id": g, "members_assigned": 0, "members_served": 0, "seconds": 0}
            for g in order
        }
        for m, g in assigned.items():
            row = grids.setdefault(
                g, {"grid_id": g, "members_assigned": 0, "members_served": 0, "seconds": 0}
            )
            row["members_assigned"] += 1
            row["members_served"] += m in t.served
            row["seconds"] += per_member[m].seconds
        out[("campaign",)] = {
            "members_assigned": len(assigned),
            "members_served": len(t.served),
            "assigned_members_served": len(t.served & set(assigned)),
            "sessions": t.sessions,
            "hours": hours(t.seconds),
            "not_served": sorted(set(assigned) - t.served),
            "by_grid": [
                {
                    "grid_id": g["grid_id"],
                    "members_assigned": g["members_assigned"],
                    "members_served": g["members_served"],
                    "hours": hours(g["seconds"]),
                }
                for g in grids.values()
            ],
        }
    return Expected(reads=out, years=years, weeks=weeks)
