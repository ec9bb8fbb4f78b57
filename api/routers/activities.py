"""Service slots (活动) and sign-up (报名): `/v1/activities`.

Every change is a command on `activities.commands`, keyed by the activity id; the activities
agent judges it in log order (services.activities) and is the authority. The API first checks
the command with the same rules against the state ClickHouse has, to answer a clear 4xx at once.

Publishing an activity (or a recurring rule's slots) and cancelling one answer 202: the slot is
readable once the agent's record reaches ClickHouse (typically < 1 s). A sign-up and its cancel
answer 202 (the command is in the log) carrying the agent's verdict: the route publishes, then
waits up to ACTIVITY_WAIT_S for the sign-up the agent wrote for this very command
(read-your-write) and answers `placed` or `waiting` with the waiting-list position, or the
agent's refusal (409/403/422); if the verdict has not landed by then, `pending`, and the page
polls the activity, whose `mine` carries the member's sign-up.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import (
    AccessLog,
    Caller,
    Ctx,
    check,
    confine,
    gate,
    hidden,
    scope_of_list,
)
from api.errors import ApiError
from api.openapi import errors
from services import activities as rules
from services import topics
from services.access import Facts
from services.events import (
    ActivityCommand,
    ActivityFields,
    ActivitySpec,
    Member,
    SignupFields,
    derived_id,
    utcnow,
)
from services.reads import activities as reads
from services.reads.registry import community_stations, member_names
from services.registry import NotFound
from services.text import FreeText, Line
from services.timeutil import LOCAL_TZ, local_midnight
from services.tokens import Principal

router = APIRouter(prefix="/v1/activities", tags=["activities"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Id = Field(min_length=1, max_length=64)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # A re-sent request with the same id is the same command, never a second one.
    client_event_id: uuid.UUID | None = None


class ActivityIn(_Body):
    """One slot (`starts_at`, `ends_at`) or a recurring rule (`recurrence`, `weeks`): exactly
    one of the two. Deadlines are given as minutes before the slot's start."""

    community_id: str = Id
    title: Line = Field(min_length=1, max_length=100)
    description: FreeText = Field(default="", max_length=2000)
    station_id: str | None = Field(default=None, min_length=1, max_length=64)
    grid_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="a level-5 grid (courtyard work)"
    )
    starts_at: datetime | None = Field(default=None, description="with a time zone offset")
    ends_at: datetime | None = None
    recurrence: Line | None = Field(
        default=None,
        max_length=60,
        description='"every <weekday> HH:MM-HH:MM", local time (固定服务日)',
    )
    weeks: int = Field(default=4, ge=1, le=12, description="recurring: how many coming weeks")
    capacity: int = Field(ge=1, le=1000)
    signup_lead_minutes: int = Field(
        default=0, ge=0, le=10080, description="sign-up closes this long before the start"
    )
    cancel_lead_minutes: int = Field(
        default=120, ge=0, le=10080, description="a place may be given back until then"
    )
    unit_ids: list[str] = Field(
        default_factory=list, max_length=50, description="empty: open to every unit"
    )

    @model_validator(mode="after")
    def _one_shape(self) -> ActivityIn:
        if (self.station_id is None) == (self.grid_id is None):
            raise ValueError("station_id or grid_id: exactly one of them")
        if self.recurrence is None and (self.starts_at is None or self.ends_at is None):
            raise ValueError("starts_at and ends_at, or recurrence")
        if self.recurrence is not None and (self.starts_at or self.ends_at):
            raise ValueError("recurrence: not with starts_at/ends_at")
        for name in ("starts_at", "ends_at"):
            v = getattr(self, name)
            if v is not None and v.tzinfo is None:
                raise ValueError(f"{name}: needs a time zone offset")
        if self.recurrence is not None:
            rules.parse_rule(self.recurrence)
        return self


class CancelIn(_Body):
    reason: FreeText = Field(default="", max_length=500)


class SignupIn(_Body):
    pass


class MySignup(BaseModel):
    status: str = Field(description="placed | waiting | withdrawn | cancelled")
    position: int | None = Field(description="1-based place on the waiting list")


class ActivityOut(ActivityFields):
    # The calling member's own sign-up, if any.
    mine: MySignup | None = None


class ActivityList(BaseModel):
    items: list[ActivityOut]
    total: int


class Published(BaseModel):
    ids: list[str] = Field(description="the activities published (a recurring rule: one a week)")
    rule_id: str | None
    status: str


class ActivityAccepted(BaseModel):
    id: str
    event_id: str
    status: str


class SignupOut(BaseModel):
    activity_id: str
    member_id: str
    event_id: str
    status: Literal["placed", "waiting", "withdrawn", "pending"] = Field(
        description="the agent's verdict; pending: not in within ACTIVITY_WAIT_S, poll"
        " GET /v1/activities/{id} (`mine`)"
    )
    position: int | None = None


class SlotRosterRow(BaseModel):
    member_id: str
    name: str
    unit_id: str
    status: str
    position: int | None
    attendance: str | None = Field(description="attended | no_show | pending (slot not over)")
    attended_station_id: str | None = Field(
        default=None,
        description="the station whose session proved the attendance (a grid's slot: which of"
        " the community's stations the member scanned in at)",
    )
    attended_station: str = Field(default="", description="that station's name")
    signed_up_at: datetime


class SlotRoster(BaseModel):
    activity_id: str
    station_id: str | None = None
    grid_id: str | None = Field(default=None, description="a level-5 grid's slot (courtyard work)")
    place: str = Field(default="", description="the station's or the grid's name")
    capacity: int
    placed: int
    waiting: int
    attended: int
    no_shows: int
    items: list[SlotRosterRow]


class NoShowRow(BaseModel):
    member_id: str
    name: str
    unit_id: str
    community_id: str
    placed: int
    attended: int
    no_shows: int


class NoShows(BaseModel):
    since: date
    until: date
    items: list[NoShowRow]


# HTTP status for each refusal code of services.activities.
_STATUS = {
    "forbidden": 403,
    "missing_field": 422,
    "invalid_activity": 422,
    "activity_not_found": 404,
}


def _refuse(code: str, reason: str) -> ApiError:
    return ApiError(_STATUS.get(code, 409), code, reason)


def _actor(caller: Principal) -> dict[str, str]:
    return {"actor_role": caller.role, "actor_id": caller.subject_id}


def _basis(body: _Body) -> str:
    # Without a client id every request is a new command; with one a re-send is the same.
    return f"client:{body.client_event_id}" if body.client_event_id else uuid.uuid4().hex


def _state(ctx: Ctx, a: ActivityFields) -> rules.ActivityState:
    s = reads.signups(ctx.warehouse, [a.activity_id])
    return rules.ActivityState(
        activity=a, signups=tuple(s), next_seq=max((x.seq for x in s), default=0) + 1
    )


def _check(state: rules.ActivityState, cmd: ActivityCommand) -> None:
    _, out = rules.apply(state, cmd)
    r = rules.refusal(out)
    if r is not None:
        raise _refuse(r.code or "refused", r.reason or "")


def _publish(ctx: Ctx, cmd: ActivityCommand) -> None:
    ctx.publisher.send_sync(topics.ACTIVITY_COMMANDS, cmd.activity_id, cmd)


def _visible(ctx: Ctx, caller: Principal, activity_id: str) -> ActivityFields:
    a = reads.activity(ctx.warehouse, activity_id)
    if a is None:
        raise hidden("activity", activity_id)
    check(caller, "activity", "read", Facts(community_id=a.community_id), "activity", activity_id)
    return a


def _known(ctx: Ctx, kind: str, id_: str, field: str) -> None:
    if not ctx.registry.exists(kind, id_):
        raise ApiError(422, f"unknown_{kind}", f"{field}: no {kind} with id {id_!r}")


def _place(ctx: Ctx, body: ActivityIn) -> None:
    """The station or grid exists and is the community's; a grid is a level-5 one."""
    try:
        if body.station_id is not None:
            st = ctx.registry.station(body.station_id)
            if st.community_id != body.community_id:
                raise ApiError(
                    422, "station_not_in_community", "station_id: not a station of the community"
                )
        elif body.grid_id is not None:
            g = ctx.registry.grid(body.grid_id)
            if g.community_id != body.community_id:
                raise ApiError(422, "grid_not_in_community", "grid_id: not a grid of the community")
            if g.level != 5:
                raise ApiError(422, "grid_not_level_5", "grid_id: slots take a level-5 grid")
    except NotFound:
        kind = "station" if body.station_id is not None else "grid"
        raise ApiError(422, f"unknown_{kind}", f"{kind}_id: no such {kind}") from None


@router.post("", response_model=Published, status_code=202, responses=errors(409))
def publish_activity(body: ActivityIn, caller: Caller, ctx: Ctx) -> Published:
    """Publish a slot, or a recurring rule's slots for the coming weeks (固定服务日): the
    community's organizer, or the admin. A rule's slots have ids derived from the rule and the
    date, so publishing the same rule again (same `client_event_id`) makes the same slots."""
    gate(caller, "activity")
    check(
        caller,
        "activity",
        "change",
        Facts(community_id=body.community_id),
        "community",
        body.community_id,
        hideable=False,
        message="an organizer publishes slots of their own community",
    )
    _known(ctx, "community", body.community_id, "community_id")
    _place(ctx, body)
    for u in body.unit_ids:
        _known(ctx, "unit", u, "unit_ids")
    now = utcnow()
    signup_lead = timedelta(minutes=body.signup_lead_minutes)
    cancel_lead = timedelta(minutes=body.cancel_lead_minutes)
    template = dict(
        community_id=body.community_id,
        title=body.title,
        description=body.description,
        station_id=body.station_id,
        grid_id=body.grid_id,
        capacity=body.capacity,
        unit_ids=tuple(sorted(set(body.unit_ids))),
    )
    basis = _basis(body)
    rule_id: str | None = None
    if body.recurrence is not None:
        rule_id = rules.rule_id(body.community_id, body.recurrence, basis)
        rec = rules.parse_rule(body.recurrence)
        first = ActivitySpec.model_validate(
            {
                **template,
                "starts_at": now + timedelta(days=1),
                "ends_at": now + timedelta(days=1, hours=1),
                "signup_deadline": now,
                "cancel_deadline": now,
            }
        )
        slots = rules.generate(rule_id, rec, first, now, body.weeks, signup_lead, cancel_lead)
    else:
        assert body.starts_at is not None and body.ends_at is not None
        if body.starts_at <= now:
            raise ApiError(422, "invalid_activity", "starts_at: the slot must start in the future")
        if body.starts_at > now + timedelta(days=366):
            raise ApiError(422, "invalid_activity", "starts_at: at most a year ahead")
        start = body.starts_at.astimezone(UTC)
        spec = ActivitySpec.model_validate(
            {
                **template,
                "starts_at": start,
                "ends_at": body.ends_at.astimezone(UTC),
                "signup_deadline": start - signup_lead,
                "cancel_deadline": start - cancel_lead,
            }
        )
        aid = "act_" + derived_id("activity", body.community_id, basis)[:16]
        slots = [(aid, spec)]
    cmds = []
    for aid, spec in slots:
        try:
            rules.validate_spec(spec)
        except ValueError as exc:
            raise ApiError(422, "invalid_activity", str(exc)) from None
        cmd = rules.command(
            activity_id=aid, action="create", at=now, basis=basis, spec=spec, **_actor(caller)
        )
        # A slot already published (a re-run of the same rule) is left as it is.
        if reads.activity(ctx.warehouse, aid) is None:
            _check(rules.ActivityState(), cmd)
            cmds.append(cmd)
    # Everything validated before the first publish: nothing half-written.
    for cmd in cmds:
        _publish(ctx, cmd)
    return Published(ids=[aid for aid, _ in slots], rule_id=rule_id, status="open")


def _local_day(d: date) -> datetime:
    return local_midnight(d)


def _period(first: date, last: date) -> None:
    # DateTime64 holds 1900-2299; slots are this century's.
    for name, d in (("from", first), ("to", last)):
        if not 2000 <= d.year <= 2100:
            raise ApiError(422, "invalid_period", f"{name}: a day between 2000 and 2100")
    if last < first:
        raise ApiError(422, "invalid_period", "to: must not be before from")
    if (last - first).days > 366:
        raise ApiError(422, "invalid_period", "to: at most a year after from")


def _mine(ctx: Ctx, caller: Principal, acts: list[ActivityFields]) -> dict[str, MySignup]:
    if caller.role != "member" or not acts:
        return {}
    ids = [a.activity_id for a in acts]
    own = reads.member_signups(ctx.warehouse, caller.subject_id, ids)
    if not own:
        return {}
    pos = reads.waiting_positions(reads.signups(ctx.warehouse, ids))
    return {
        s.activity_id: MySignup(status=s.status, position=pos.get((s.activity_id, s.member_id)))
        for s in own
    }


@router.get("", response_model=ActivityList)
def list_activities(
    caller: Caller,
    ctx: Ctx,
    community_id: Annotated[str | None, Query(max_length=64)] = None,
    from_: Annotated[
        date | None, Query(alias="from", description="first local day (default: today)")
    ] = None,
    to: Annotated[
        date | None, Query(description="last local day (default: from + 27 days)")
    ] = None,
    include_cancelled: bool = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ActivityList:
    """Slots starting in [from, to] (local days), by start. A member without `community_id`
    sees their own community's; an organizer keeps to their own community."""
    confined = scope_of_list(caller, "activity")
    community_id = confine(community_id, confined.community_id, "community_id")
    if community_id is None and caller.role == "member":
        try:
            community_id = ctx.registry.member(caller.subject_id).community_id
        except NotFound:
            raise hidden("member", caller.subject_id) from None
    first = from_ or datetime.now(LOCAL_TZ).date()
    if not 2000 <= first.year <= 2100:
        raise ApiError(422, "invalid_period", "from: a day between 2000 and 2100")
    last = to or first + timedelta(days=27)
    _period(first, last)
    acts, total = reads.list_activities(
        ctx.warehouse,
        community_id,
        _local_day(first),
        _local_day(last + timedelta(days=1)),
        limit,
        offset,
        include_cancelled,
    )
    mine = _mine(ctx, caller, acts)
    return ActivityList(
        items=[ActivityOut(**a.model_dump(), mine=mine.get(a.activity_id)) for a in acts],
        total=total,
    )


@router.get("/no-shows", response_model=NoShows, responses=errors(503))
def list_no_shows(
    caller: Caller,
    ctx: Ctx,
    audit: AccessLog,
    community_id: Annotated[str | None, Query(max_length=64)] = None,
    unit_id: Annotated[str | None, Query(max_length=64)] = None,
    from_: Annotated[date | None, Query(alias="from", description="default: 90 days ago")] = None,
    to: Annotated[date | None, Query(description="last local day (default: today)")] = None,
) -> NoShows:
    """Per member, over the slots that are over: places held, attended, no-shows (缺席). An
    organizer sees their community's members, HR their unit's. The members listed are logged
    (one access-log entry)."""
    confined = scope_of_list(caller, "activity_roster")
    community_id = confine(community_id, confined.community_id, "community_id")
    unit_id = confine(unit_id, confined.unit_id, "unit_id")
    last = to or datetime.now(LOCAL_TZ).date()
    if not 2000 <= last.year <= 2100:
        raise ApiError(422, "invalid_period", "to: a day between 2000 and 2100")
    first = from_ or last - timedelta(days=90)
    _period(first, last)
    rows = reads.no_shows(
        ctx.warehouse,
        utcnow(),
        _local_day(first),
        _local_day(last + timedelta(days=1)),
        community_id=community_id,
        unit_id=unit_id,
    )
    # Names with where they serve: one access-log entry naming everyone on the answer.
    listed = [r.member_id for r in rows]
    audit.record_list(listed, "no-shows")
    names = member_names(ctx.warehouse, listed)
    return NoShows(
        since=first,
        until=last,
        items=[
            NoShowRow(
                member_id=r.member_id,
                name=names.get(r.member_id, ""),
                unit_id=r.unit_id,
                community_id=r.community_id,
                placed=r.placed,
                attended=r.attended,
                no_shows=r.no_shows,
            )
            for r in rows
        ],
    )


@router.get("/{activity_id}", response_model=ActivityOut)
def get_activity(activity_id: Annotated[str, Id], caller: Caller, ctx: Ctx) -> ActivityOut:
    """One slot's latest state (places taken, waiting), and the calling member's sign-up."""
    a = _visible(ctx, caller, activity_id)
    return ActivityOut(**a.model_dump(), mine=_mine(ctx, caller, [a]).get(a.activity_id))


@router.post(
    "/{activity_id}/cancel", response_model=ActivityAccepted, status_code=202, responses=errors(409)
)
def cancel_activity(
    activity_id: Annotated[str, Id], body: CancelIn, caller: Caller, ctx: Ctx
) -> ActivityAccepted:
    """Cancel a slot (the community's organizer, the admin): every sign-up is cancelled too."""
    gate(caller, "activity")
    a = _visible(ctx, caller, activity_id)
    check(
        caller, "activity", "change", Facts(community_id=a.community_id), "activity", a.activity_id
    )
    cmd = rules.command(
        activity_id=a.activity_id,
        action="cancel",
        at=utcnow(),
        basis=_basis(body),
        reason=body.reason or None,
        **_actor(caller),
    )
    _check(_state(ctx, a), cmd)
    _publish(ctx, cmd)
    return ActivityAccepted(id=a.activity_id, event_id=cmd.event_id, status="cancelled")


def _member(ctx: Ctx, caller: Principal) -> Member:
    gate(caller, "activity_signup")
    try:
        return ctx.registry.member(caller.subject_id)
    except NotFound:
        raise hidden("member", caller.subject_id) from None


def _await(
    ctx: Ctx, a: ActivityFields, m: Member, cmd: ActivityCommand, signing_up: bool
) -> SignupOut:
    deadline = time.monotonic() + ctx.settings.activity_wait_s
    while True:
        v = reads.verdict(ctx.warehouse, a.activity_id, m.id, cmd.event_id, signing_up)
        if v is not None:
            break
        if time.monotonic() >= deadline:
            return SignupOut(
                activity_id=a.activity_id, member_id=m.id, event_id=cmd.event_id, status="pending"
            )
        time.sleep(0.1)
    if v.code is not None:
        raise _refuse(v.code, v.reason or "")
    s: SignupFields | None = v.signup
    assert s is not None
    status: Literal["placed", "waiting", "withdrawn"] = (
        "placed" if s.status == "placed" else "waiting" if s.status == "waiting" else "withdrawn"
    )
    return SignupOut(
        activity_id=a.activity_id,
        member_id=m.id,
        event_id=cmd.event_id,
        status=status,
        position=v.position,
    )


@router.post(
    "/{activity_id}/signup",
    response_model=SignupOut,
    status_code=202,
    responses=errors(409),
)
def sign_up(activity_id: Annotated[str, Id], body: SignupIn, caller: Caller, ctx: Ctx) -> SignupOut:
    """报名: the member themself signs up. A full slot puts them on the waiting list (候补);
    refused: past the deadline, another community's or another unit's slot, already signed up,
    the slot cancelled."""
    m = _member(ctx, caller)
    a = _visible(ctx, caller, activity_id)
    cmd = rules.command(
        activity_id=a.activity_id,
        action="sign_up",
        at=utcnow(),
        basis=_basis(body),
        member_id=m.id,
        member_unit_id=m.unit_id,
        member_community_id=m.community_id,
        **_actor(caller),
    )
    _check(_state(ctx, a), cmd)
    _publish(ctx, cmd)
    return _await(ctx, a, m, cmd, signing_up=True)


@router.delete(
    "/{activity_id}/signup",
    response_model=SignupOut,
    status_code=202,
    responses=errors(409),
)
def withdraw(activity_id: Annotated[str, Id], caller: Caller, ctx: Ctx) -> SignupOut:
    """取消报名: the member themself gives their place back (until the cancel deadline) or
    leaves the waiting list; the first waiting member is promoted."""
    m = _member(ctx, caller)
    a = _visible(ctx, caller, activity_id)
    cmd = rules.command(
        activity_id=a.activity_id,
        action="withdraw",
        at=utcnow(),
        basis=uuid.uuid4().hex,
        member_id=m.id,
        **_actor(caller),
    )
    _check(_state(ctx, a), cmd)
    _publish(ctx, cmd)
    return _await(ctx, a, m, cmd, signing_up=False)


def _place_name(ctx: Ctx, a: ActivityFields, stations: dict[str, str]) -> str:
    if a.station_id is not None:
        return stations.get(a.station_id, "")
    try:
        return ctx.registry.grid(a.grid_id or "").name
    except NotFound:
        return ""


@router.get("/{activity_id}/roster", response_model=SlotRoster, responses=errors(503))
def roster(
    activity_id: Annotated[str, Id], caller: Caller, ctx: Ctx, audit: AccessLog
) -> SlotRoster:
    """Who signed up, attended (已签到), did not show (缺席), waits (候补): the community's
    organizer and the admin; HR sees its unit's members only. Attendance comes from sessions
    at the slot's station (a grid's slot: any station of the community) overlapping the slot;
    each attendee's row names the station that proved it. The members listed are logged (one
    access-log entry)."""
    a = reads.activity(ctx.warehouse, activity_id)
    if a is None:
        raise hidden("activity", activity_id)
    facts = Facts(community_id=a.community_id)
    check(caller, "activity_roster", "read", facts, "activity", activity_id)
    confined = scope_of_list(caller, "activity_roster")
    rows = reads.roster(ctx.warehouse, a, utcnow(), unit_id=confined.unit_id)
    listed = [r.signup.member_id for r in rows]
    audit.record_list(listed, f"slot roster {a.activity_id}")
    names = member_names(ctx.warehouse, listed)
    stations = {sid: name for sid, name, _ in community_stations(ctx.warehouse, a.community_id)}
    items = [
        SlotRosterRow(
            member_id=r.signup.member_id,
            name=names.get(r.signup.member_id, ""),
            unit_id=r.signup.unit_id,
            status=r.signup.status,
            position=r.position,
            attendance=r.attendance,
            attended_station_id=r.station_id,
            attended_station=stations.get(r.station_id or "", ""),
            signed_up_at=r.signup.signed_up_at,
        )
        for r in rows
    ]
    return SlotRoster(
        activity_id=a.activity_id,
        station_id=a.station_id,
        grid_id=a.grid_id,
        place=_place_name(ctx, a, stations),
        capacity=a.capacity,
        placed=sum(r.status == "placed" for r in items),
        waiting=sum(r.status == "waiting" for r in items),
        attended=sum(r.attendance == "attended" for r in items),
        no_shows=sum(r.attendance == "no_show" for r in items),
        items=items,
    )
