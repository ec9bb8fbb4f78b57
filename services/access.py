"""The access policy: who may read or change what, and how a refusal is answered.

The one place where roles are compared with resources. Everything here is a pure function of
the caller (`Principal`: role and subject) and plain facts about the object asked for (which
member, community and unit it belongs to); the callers (`api.deps`, the registry, the member
import, the routers) look the facts up and turn a refusal into their error.

Roles and their subject: a member (their member id), an organizer (a community id), HR (a unit
id), the admin (everything), the county office (`county`: reads what an organizer reads, for
every community, and the county's roll-ups; changes nothing) and a town office (a town id: its
towns' roll-ups, its communities' desks and, as the county office does everywhere, their members'
records, service and excused weeks, phones masked; changes nothing).

How a refusal is answered (`decide`), so that an id's existence never leaks to a caller who may
not see it:

- a read refused answers 404 (`HIDE`): a caller who may not read the object cannot tell it from
  one that does not exist;
- a change refused answers 403 (`FORBID`) when the caller's role never makes this change (a role
  gate, the same answer for every id, checked before the object is looked up) or when the caller
  may read the object (it knows the object exists); otherwise 404, like a read;
- an object named in a request body rather than the path is refused with 403 where the route
  answers an unknown one with 422 (`hideable=False`) when the caller may read it; one the
  caller may not read is answered by the route exactly as an unknown one (`api.deps.known_to`),
  so a body cannot probe which ids exist outside the caller's scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from services.tokens import ROLES, Principal, Role

Action = Literal["read", "change"]
Resource = Literal[
    "unit",
    "town",
    "community",
    "station_kind",
    "county",
    "grid",
    "station",
    "station_token",
    "community_desk",
    "member",
    "member_service",
    "session",
    "session_feedback",
    "checkin",
    "community_rating",
    "unit_desk",
    "wish",
    "wish_assignment",
    "resource",
    "project",
    "campaign",
    "import",
    "token",
    "token_issue",
    "reminders",
    # Personal information care (issue 15).
    "member_phone",
    "my_data",
    "access_log",
    "assisted_checkin",
    "team_checkin",
    "unit_roster",
    "report_receipt",
    "activity",
    "activity_roster",
    "activity_signup",
    "excusal",
    "excusal_request",
    "post",
    "post_claim",
    "rollup",
    # Records of service by the national rules (issue 15).
    "community_signers",
    "volunteer_no",
    "wish_contact",
]


class Decision(StrEnum):
    ALLOW = "allow"
    FORBID = "forbid"  # 403: refused, and the caller may know the object exists
    HIDE = "hide"  # 404: answered as if the object did not exist

    @property
    def status(self) -> int:
        return {"allow": 200, "forbid": 403, "hide": 404}[self.value]


@dataclass(frozen=True, slots=True)
class Facts:
    """What the policy needs to know of one object; fields that do not apply stay None/empty.

    `town_id` is the town the object lies in (a community's town; set only where a town office
    may be asked about it), `community_id` is the community the object belongs to (a session's:
    where it was served, the station's community), `also_community_id` a second one that has a say (a session's
    member's own community), `unit_id` the unit it belongs to, `member_id` the member it is
    about. `members` and `units` are further members and units the object is tied to: a wish's
    assignee and whoever fulfilled it, the units sent into a campaign. `token_id` names an
    issued bearer token.
    """

    community_id: str | None = None
    town_id: str | None = None
    also_community_id: str | None = None
    unit_id: str | None = None
    member_id: str | None = None
    members: frozenset[str] = frozenset()
    units: frozenset[str] = frozenset()
    token_id: str | None = None


def member_facts(
    member_id: str, community_id: str, unit_id: str, town_id: str | None = None
) -> Facts:
    """A member's facts; `town_id` is the town their community lies in, looked up only for a
    caller judged by town (`scoped_by_town`)."""
    return Facts(member_id=member_id, community_id=community_id, unit_id=unit_id, town_id=town_id)


Predicate = Callable[[Principal, Facts], bool]


# ---- the predicates ------------------------------------------------------------------------


def _is(p: Principal, role: Role, subject: str | None) -> bool:
    return p.role == role and subject is not None and p.subject_id == subject


def is_admin(p: Principal) -> bool:
    return p.role == "admin"


def is_county(p: Principal) -> bool:
    """The county office: reads what an organizer reads, in every community."""
    return p.role == "county"


def in_town(p: Principal, town_id: str | None) -> bool:
    """The office of this town."""
    return _is(p, "town", town_id)


def scoped_by_town(p: Principal) -> bool:
    """Whether deciding for this caller needs the town an object lies in (`Facts.town_id`):
    callers look the town up only then, so nobody else pays for it."""
    return p.role == "town"


def oversees_community(p: Principal, f: Facts) -> bool:
    """The county office, or the office of the town the object's community lies in."""
    return is_county(p) or (f.community_id is not None and in_town(p, f.town_id))


def manages_community(p: Principal, community_id: str | None) -> bool:
    """The admin, or the organizer of this community."""
    return is_admin(p) or _is(p, "organizer", community_id)


def reads_unit(p: Principal, unit_id: str | None) -> bool:
    """The admin, or HR of this unit."""
    return is_admin(p) or _is(p, "hr", unit_id)


def reads_member(p: Principal, f: Facts) -> bool:
    """The member themself, their community's organizer, their unit's HR, the admin."""
    return (
        is_admin(p)
        or _is(p, "member", f.member_id)
        or _is(p, "organizer", f.community_id)
        or _is(p, "hr", f.unit_id)
    )


def is_assignee(
    role: str, subject_id: str, assignee_kind: str | None, assignee_id: str | None
) -> bool:
    """Whether an actor is a wish's assignee itself: the member for a member, the unit's HR for a
    unit (not the admin nor the organizer, who dispatch but do not accept on anyone's behalf)."""
    if assignee_id is None:
        return False
    if assignee_kind == "member":
        return role == "member" and subject_id == assignee_id
    if assignee_kind == "unit":
        return role == "hr" and subject_id == assignee_id
    return False


def _anyone(p: Principal, f: Facts) -> bool:
    return True


def _admin(p: Principal, f: Facts) -> bool:
    return is_admin(p)


def _community(p: Principal, f: Facts) -> bool:
    return manages_community(p, f.community_id)


def _unit(p: Principal, f: Facts) -> bool:
    return reads_unit(p, f.unit_id)


def _community_read(p: Principal, f: Facts) -> bool:
    return manages_community(p, f.community_id) or oversees_community(p, f)


def _county_or(pred: Predicate) -> Predicate:
    def read(p: Principal, f: Facts) -> bool:
        return is_county(p) or pred(p, f)

    return read


def _offices_or(pred: Predicate) -> Predicate:
    # A member's record, service and excused weeks, read (never changed) by the offices above
    # their community: the county office everywhere, a town office in its own towns' communities
    # (the member's community's town in the facts). Phones stay masked for both: a full phone is
    # `member_phone`'s, for who must call.
    def read(p: Principal, f: Facts) -> bool:
        return oversees_community(p, f) or pred(p, f)

    return read


def _rollup_read(p: Principal, f: Facts) -> bool:
    # A roll-up names its scope: the county (no facts: the admin and the county office), a
    # town (its office too), a community (its town's office and its organizer too).
    if is_admin(p) or is_county(p):
        return True
    if f.community_id is not None:
        return _is(p, "organizer", f.community_id) or in_town(p, f.town_id)
    return f.town_id is not None and in_town(p, f.town_id)


def _in_community_scope(p: Principal, f: Facts) -> bool:
    # Grids and stations are the county's map, except that organizers keep to their own.
    return p.role != "organizer" or p.subject_id == f.community_id


def _member(p: Principal, f: Facts) -> bool:
    return reads_member(p, f)


def _either_community(p: Principal, f: Facts) -> bool:
    return manages_community(p, f.community_id) or manages_community(p, f.also_community_id)


def _wish_read(p: Principal, f: Facts) -> bool:
    # The assignee and whoever fulfilled it follow the wish; nobody else outside the community.
    return (
        manages_community(p, f.community_id)
        or (p.role == "member" and p.subject_id in f.members)
        or (p.role == "hr" and p.subject_id in f.units)
    )


def _assignable(p: Principal, f: Facts) -> bool:
    # The assignee (and whoever fulfilled it) and the community. A member or HR who is neither
    # gets the 404 of a wish that does not exist: a 403 `not_assignee` told them the id was a
    # wish of someone else's (issue 17).
    return manages_community(p, f.community_id) or _wish_assignee(p, f)


def _wish_assignee(p: Principal, f: Facts) -> bool:
    return (p.role == "member" and p.subject_id in f.members) or (
        p.role == "hr" and p.subject_id in f.units
    )


def _resource_read(p: Principal, f: Facts) -> bool:
    # A resource offered county-wide (no community) is open to every organizer.
    return reads_unit(p, f.unit_id) or (
        p.role == "organizer" and f.community_id in (None, p.subject_id)
    )


def _project_read(p: Principal, f: Facts) -> bool:
    return manages_community(p, f.community_id) or _is(p, "hr", f.unit_id)


def _campaign_read(p: Principal, f: Facts) -> bool:
    # HR of a unit sent into the campaign follows its members' duty.
    return manages_community(p, f.community_id) or (p.role == "hr" and p.subject_id in f.units)


def _own_member(p: Principal, f: Facts) -> bool:
    return _is(p, "member", f.member_id)


def _assisting(p: Principal, f: Facts) -> bool:
    # 代签到: the organizer of both the station's community (`community_id`) and the member's
    # (`also_community_id`), or the admin.
    return manages_community(p, f.community_id) and manages_community(p, f.also_community_id)


def _team_leader(p: Principal, f: Facts) -> bool:
    # The member's team leader (`members`: the leader the organizer set on the member's record).
    return p.role == "member" and p.subject_id in f.members


def screen_may_assist(station_community_id: str, f: Facts) -> bool:
    """Whether a station's tablet (its screen key, no bearer) may check in this member: one of
    the station's own community."""
    return f.community_id is not None and f.community_id == station_community_id


def _own_or_community(p: Principal, f: Facts) -> bool:
    return _is(p, "member", f.member_id) or manages_community(p, f.community_id)


def _post_read(p: Principal, f: Facts) -> bool:
    # A community's posts are open to its members (to claim one); `also_community_id` is the
    # calling member's own community, `members` the post's holder and claimants, who follow it
    # wherever they have moved since.
    return (
        manages_community(p, f.community_id)
        or (p.role == "member" and f.also_community_id == f.community_id)
        or (p.role == "member" and p.subject_id in f.members)
    )


def _post_claim(p: Principal, f: Facts) -> bool:
    # Claimed by a member of the post's community; left by its holder (in `members`).
    return p.role == "member" and (
        (f.community_id is not None and f.also_community_id == f.community_id)
        or p.subject_id in f.members
    )


def _own_token(p: Principal, f: Facts) -> bool:
    return is_admin(p) or (f.token_id is not None and p.token_id == f.token_id)


def _signers_change(p: Principal, f: Facts) -> bool:
    # Who signs the community's records of service is the community's own business (and its
    # town office's, which oversees it); the county office changes nothing.
    return manages_community(p, f.community_id) or (
        f.community_id is not None and in_town(p, f.town_id)
    )


def _own_or_unit(p: Principal, f: Facts) -> bool:
    # What the member holds from outside (a national volunteer number): the member, or the HR
    # who files the unit's members with the national system.
    return is_admin(p) or _is(p, "member", f.member_id) or _is(p, "hr", f.unit_id)


def _wish_contact(p: Principal, f: Facts) -> bool:
    # The resident's phone: the community that took the wish and whoever was sent to fulfil it
    # (`members`, `units`: the current assignee), not whoever merely follows the wish.
    return manages_community(p, f.community_id) or _wish_assignee(p, f)


def _roster_read(p: Principal, f: Facts) -> bool:
    # HR follows its members' sign-ups and no-shows: the roster's rows are confined to the
    # unit (list_scope), so HR reads any activity's roster, never another unit's rows.
    return manages_community(p, f.community_id) or p.role == "hr"


# ---- the table -------------------------------------------------------------------------------

ALL_ROLES: frozenset[Role] = frozenset(ROLES)
_ORG: frozenset[Role] = frozenset({"admin", "organizer"})
_HR: frozenset[Role] = frozenset({"admin", "hr"})
_ADMIN: frozenset[Role] = frozenset({"admin"})


@dataclass(frozen=True)
class Rule:
    about: str
    read: Predicate
    change: Predicate
    # The roles that may ever make the change: any other role is refused with 403 before the
    # object is looked up (a role gate says nothing about any id).
    change_roles: frozenset[Role]


RULES: dict[Resource, Rule] = {
    # The county's directory: every signed-in caller reads it, the admin keeps it.
    "unit": Rule("a unit's registry entry", _anyone, _admin, _ADMIN),
    "town": Rule("a town's registry entry", _anyone, _admin, _ADMIN),
    "community": Rule("a community's registry entry", _anyone, _admin, _ADMIN),
    "station_kind": Rule("a kind of station", _anyone, _admin, _ADMIN),
    "county": Rule(
        "county-wide reads (rankings, assessment rules) and their rules", _anyone, _admin, _ADMIN
    ),
    # A community's map: the admin and the community's organizer keep it.
    "grid": Rule("a grid's registry entry", _in_community_scope, _community, _ORG),
    "station": Rule("a station's registry entry", _in_community_scope, _community, _ORG),
    # What lets a phone check in at a station: whoever holds it can check in from anywhere, so
    # only the station's own organizer (who prints and hangs it) and the admin ever see it, in
    # any answer (a station's `qr_url`, its QR code and poster, its screen keys); members and
    # HR read the station without it.
    "station_token": Rule(
        "a station's signed tokens: the poster token (qr_url, QR code, poster sheet) and the"
        " screen keys; changed: screen keys issued or revoked",
        _community,
        _community,
        _ORG,
    ),
    "community_desk": Rule(
        "a community's figures and tools: its weeks and breakdowns, grids' and stations' weeks,"
        " who is on site, QR posters and screen keys, the review queue, its feedback",
        _community_read,
        _community,
        _ORG,
    ),
    # A member: their record is personal data, read by those the member reports to.
    "member": Rule(
        "a member's registry entry and personal data (and their phone's activation)",
        _offices_or(_member),
        _community,
        _ORG,
    ),
    "member_service": Rule(
        "a member's sessions, hours, weeks, records of service, wishes fulfilled and the"
        " feedback about them; changed: the community's rating and evaluation of the member",
        _offices_or(_member),
        _community,
        _ORG,
    ),
    "session": Rule(
        "one session as the community where it was served reviews it",
        _county_or(_community),
        _community,
        _ORG,
    ),
    "session_feedback": Rule(
        "a rating of one session: the community where it was served or the member's own",
        _county_or(_either_community),
        _either_community,
        _ORG,
    ),
    "checkin": Rule("a member's own scan", _own_member, _own_member, frozenset({"member"})),
    "reminders": Rule(
        "a member's own reminders (inbox) and the kinds they receive: the member alone",
        _own_member,
        _own_member,
        frozenset({"member"}),
    ),
    "community_rating": Rule(
        "a member's rating of their own community's arrangements",
        _own_member,
        _own_member,
        frozenset({"member"}),
    ),
    # A unit: its HR reads its members' figures and offers its resources.
    "unit_desk": Rule(
        "a unit's figures: its weeks, assessment, feedback about its members, wishes fulfilled",
        _unit,
        _unit,
        _HR,
    ),
    # The unit's loop (issue 15): its roster, and the communities' receipts of reports.
    "unit_roster": Rule(
        "a unit's roster of its in-service members and their report status; changed: uploaded",
        _unit,
        _unit,
        _HR,
    ),
    "report_receipt": Rule(
        "a member's report to their community (报到回执): read by whoever reads the member;"
        " confirmed by that community",
        _member,
        _community,
        _ORG,
    ),
    # The three lists and campaigns.
    "wish": Rule(
        "a micro-wish; changed: ordered, dispatched, confirmed, cancelled, matched by the community",
        _county_or(_wish_read),
        _community,
        _ORG,
    ),
    "wish_assignment": Rule(
        "a wish's acceptance, decline and completion by its assignee",
        _county_or(_assignable),
        _wish_assignee,
        frozenset({"member", "hr"}),
    ),
    "resource": Rule(
        "a unit's offered resource; changed: offered or withdrawn by the unit",
        _county_or(_resource_read),
        _unit,
        _HR,
    ),
    "project": Rule("a wish matched with a resource", _county_or(_project_read), _community, _ORG),
    "campaign": Rule("a deployment campaign", _county_or(_campaign_read), _community, _ORG),
    # Service slots (活动) and sign-up (报名): an activity is a public notice of its community.
    "activity": Rule(
        "a service slot; changed: published or cancelled by the community",
        _anyone,
        _community,
        _ORG,
    ),
    "activity_roster": Rule(
        "who signed up for a slot, attended, did not show, waits (HR: its unit's members)",
        _roster_read,
        _community,
        _ORG,
    ),
    "activity_signup": Rule(
        "a member's own sign-up for a slot: signed up or cancelled by the member alone",
        _own_member,
        _own_member,
        frozenset({"member"}),
    ),
    # Excused weeks (请假): the member asks, the community where they asked decides; the
    # member's unit's HR follows the member's requests.
    "excusal": Rule(
        "a member's excused-week requests; changed: approved or declined by the organizer of the"
        " community the request was made in",
        _offices_or(_member),
        _community,
        _ORG,
    ),
    "excusal_request": Rule(
        "asking to be excused for some weeks: the member, or their community's organizer for them",
        _member,
        _own_or_community,
        frozenset({"member", "organizer", "admin"}),
    ),
    # Standing posts (岗位认领): the community keeps them, its members claim and leave them.
    "post": Rule(
        "a standing post of a community's grid; changed: created, claims decided, ended",
        _post_read,
        _community,
        _ORG,
    ),
    "post_claim": Rule(
        "claiming a standing post (a member of its community) and leaving it (its holder)",
        _post_read,
        _post_claim,
        frozenset({"member"}),
    ),
    # Operations.
    "import": Rule(
        "a member spreadsheet row (its community); read: the empty template",
        _anyone,
        _community,
        _ORG,
    ),
    "token": Rule(
        "an issued bearer token (read: who am I; change: revoke)", _own_token, _own_token, ALL_ROLES
    ),
    "token_issue": Rule("issuing a bearer token to anyone", _admin, _admin, _ADMIN),
    # Personal information care (个人信息保护法, issue 15).
    # A phone in full: only who must call the member (their community's organizer, from the
    # not-served and on-site lists) and the admin; every reveal is logged. The member, HR and
    # every list read it masked.
    "member_phone": Rule(
        "a member's phone number in full (a logged reveal)", _community, _community, _ORG
    ),
    # Everything held about a member, as one download: the member alone.
    "my_data": Rule(
        "everything held about a member (their own data download)",
        _own_member,
        _own_member,
        frozenset({"member"}),
    ),
    # Who read whose personal data: the admin's.
    "access_log": Rule("the personal-data access log", _admin, _admin, _ADMIN),
    # Check-ins made for a member (issue 14).
    "assisted_checkin": Rule(
        "checking in or out a member without a smartphone (代签到) at a station, and finding"
        " them: the organizer of the station's and the member's community",
        _assisting,
        _assisting,
        _ORG,
    ),
    "team_checkin": Rule(
        "checking in or out a member with their team: the member's team leader",
        _team_leader,
        _team_leader,
        frozenset({"member"}),
    ),
    # The county's, a town's and a community's roll-ups (drill-down, heatmap): read-only.
    "rollup": Rule(
        "roll-ups of a scope (the county, a town, a community): the drill-down by town,"
        " community, grid and unit, the check-in heatmap, their downloads",
        _rollup_read,
        _admin,
        _ADMIN,
    ),
    # Records of service by the national rules (issue 15).
    "community_signers": Rule(
        "who signs a community's records of service (负责人, 经办人): set by its organizer, its"
        " town's office or the admin",
        _anyone,
        _signers_change,
        frozenset({"admin", "organizer", "town"}),
    ),
    "volunteer_no": Rule(
        "a member's national volunteer number (志愿者编号): set by the member or their unit's HR",
        _county_or(_member),
        _own_or_unit,
        frozenset({"admin", "member", "hr"}),
    ),
    "wish_contact": Rule(
        "a micro-wish's resident contact in full (a logged reveal): the community and the"
        " wish's assignee",
        _wish_contact,
        _admin,
        _ADMIN,
    ),
}
RESOURCES: tuple[Resource, ...] = tuple(RULES)


def allows(p: Principal, resource: Resource, action: Action, facts: Facts) -> bool:
    rule = RULES[resource]
    return (rule.read if action == "read" else rule.change)(p, facts)


def actor_may(role: str, subject_id: str, resource: Resource, facts: Facts) -> bool:
    """Whether a command recorded with this actor (its role and subject) may change the resource:
    the rules that replay the log (the wish lifecycle) judge each command by who made it."""
    for r in ROLES:
        if r == role:
            return allows(Principal(r, subject_id, "", None), resource, "change", facts)
    return False


def may_ever_change(p: Principal, resource: Resource) -> bool:
    """The role gate: whether the caller's role makes this kind of change at all."""
    return p.role in RULES[resource].change_roles


def decide(
    p: Principal, resource: Resource, action: Action, facts: Facts, *, hideable: bool = True
) -> Decision:
    """Allowed, or how to refuse (see the module docstring)."""
    if allows(p, resource, action, facts):
        return Decision.ALLOW
    if action == "change" and (
        not hideable or not may_ever_change(p, resource) or allows(p, resource, "read", facts)
    ):
        return Decision.FORBID
    return Decision.HIDE if hideable else Decision.FORBID


def roles_text(resource: Resource) -> str:
    """The roles a change needs, for a refusal's message."""
    return " or ".join(r for r in ROLES if r in RULES[resource].change_roles)


# ---- the scopes of lists -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListScope:
    """What a caller's list of some resource is confined to: each field set is a restriction
    (None: not restricted that way). An admin's scope restricts nothing."""

    member_id: str | None = None
    community_id: str | None = None
    unit_id: str | None = None

    @property
    def unconfined(self) -> bool:
        return self.member_id is None and self.community_id is None and self.unit_id is None


_NO_LIMIT = ListScope()


def list_scope(p: Principal, resource: Resource) -> ListScope | None:
    """What the caller's list of this resource is confined to; None: the caller's role may not
    list it at all (403, no id involved).

    Members lists: a member themself, an organizer's community, an HR's unit. Grids and
    stations: an organizer's community, unconfined for the others. The directory: unconfined.
    Wishes: an organizer's community; HR, wishes assigned to or fulfilled by their unit; a
    member, those assigned to or fulfilled by them. Resources: HR, their unit's; an organizer,
    those offered to their community (the caller also shows county-wide offers). Projects: an
    organizer's community, HR's unit. Campaigns and the county's week of communities: an
    organizer's community.
    """
    if is_admin(p):
        return _NO_LIMIT
    if is_county(p) or p.role == "town":
        return _office_scope(p, resource)
    own = {
        "member": ListScope(member_id=p.subject_id),
        "organizer": ListScope(community_id=p.subject_id),
        "hr": ListScope(unit_id=p.subject_id),
    }.get(p.role)
    if own is None:
        return None
    if resource in _DIRECTORY:
        return _NO_LIMIT
    if resource in ("grid", "station"):
        return own if p.role == "organizer" else _NO_LIMIT
    if resource in ("member", "wish"):
        return own
    if resource in ("resource", "project"):
        return None if p.role == "member" else own
    if resource == "post":
        # A member lists their own community's posts (the caller resolves which), HR none.
        return None if p.role == "hr" else own
    if resource in ("campaign", "community_desk"):
        return own if p.role == "organizer" else None
    if resource == "activity":
        # A community's notice board: an organizer keeps to their own, others read any.
        return own if p.role == "organizer" else _NO_LIMIT
    if resource == "activity_roster":
        return None if p.role == "member" else own
    raise KeyError(f"no list of {resource!r}")


_DIRECTORY: tuple[Resource, ...] = ("unit", "town", "community", "station_kind", "county")
# What the county office lists unconfined: what an organizer lists, for every community.
_COUNTY_LISTS: tuple[Resource, ...] = (
    "grid",
    "station",
    "member",
    "wish",
    "resource",
    "project",
    "campaign",
    "community_desk",
)


def _office_scope(p: Principal, resource: Resource) -> ListScope | None:
    """The county office lists what organizers list, unconfined; a town office lists the
    directory and the county's map (grids, stations) as HR does, and nothing of people: its
    communities' figures come from the roll-ups, which are scoped by town."""
    if resource in _DIRECTORY or resource in ("grid", "station", "activity"):
        return _NO_LIMIT  # the directory, the map, and slots (a community's public notices)
    if is_county(p) and resource in _COUNTY_LISTS:
        return _NO_LIMIT
    if resource in _COUNTY_LISTS or resource in ("activity_roster", "post"):
        # Who signed up for a slot or holds a post stays with the community (and the unit);
        # the offices read those figures from the roll-ups.
        return None
    raise KeyError(f"no list of {resource!r}")


def within(requested: str | None, confined: str | None) -> bool:
    """Whether a filter the caller asked for stays inside their scope (None: not asked)."""
    return confined is None or requested in (None, confined)


def has_role(p: Principal, roles: tuple[str, ...] | frozenset[str]) -> bool:
    """A coarse role gate (`api.deps.require`): whether the caller holds one of these roles."""
    return p.role in roles
