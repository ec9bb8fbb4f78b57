"""The access policy as a role-by-resource table: every resource, read and change, decided for
ten callers (two of each role, one inside scope 1 and one outside it, the admin and the county
office; the town office T1 holds C1, T2 holds C2).

Scope 1 is member M1 of unit U1 living in community C1; scope 2 the same with M2, U2, C2. Each
row names an object of scope 1 (the facts the caller looks up) and spells out the decision for
every caller, in the order of `WHO`: A allow, F refuse with 403, H refuse with 404 (as if the
object did not exist).
"""

from __future__ import annotations

import pytest

from services.access import (
    RESOURCES,
    RULES,
    Action,
    Decision,
    Facts,
    ListScope,
    Resource,
    actor_may,
    allows,
    decide,
    is_assignee,
    list_scope,
    may_ever_change,
    member_facts,
    within,
)
from services.tokens import ROLES, Principal

M1, M2, C1, C2, U1, U2 = "mem_1", "mem_2", "comm_1", "comm_2", "unit_1", "unit_2"
# Towns: C1 lies in T1, C2 in T2.
T1, T2 = "town_1", "town_2"
WHO: dict[str, Principal] = {
    "m1": Principal("member", M1, "tok-m1", 1),
    "m2": Principal("member", M2, "tok-m2", 1),
    "org1": Principal("organizer", C1, "tok-org1", 1),
    "org2": Principal("organizer", C2, "tok-org2", 1),
    "hr1": Principal("hr", U1, "tok-hr1", 1),
    "hr2": Principal("hr", U2, "tok-hr2", 1),
    "admin": Principal("admin", "admin", "admin-token", None),
    "county": Principal("county", "county", "tok-county", 1),
    "town1": Principal("town", T1, "tok-town1", 1),
    "town2": Principal("town", T2, "tok-town2", 1),
}
CODE = {"A": Decision.ALLOW, "F": Decision.FORBID, "H": Decision.HIDE}

# A session of M2 (scope 2) served at a station of C1: C1 reviews it, both communities rate it.
VISITING_SESSION = Facts(community_id=C1, also_community_id=C2, member_id=M2, unit_id=U2)
# A wish of C1 dispatched to M1 and fulfilled by M1 (so by U1 too).
WISH = Facts(community_id=C1, members=frozenset({M1}), units=frozenset({U1}))
# A standing post of C1, asked about by a member living in C1, in C2, and held by M1 (now in C2).
POST_C1 = Facts(community_id=C1, also_community_id=C1)
POST_C2 = Facts(community_id=C1, also_community_id=C2)
POST_HELD = Facts(community_id=C1, also_community_id=C2, members=frozenset({M1}))

#                 (resource, facts, hideable): (read, change), callers in WHO's order:
#                                               m1 m2 org1 org2 hr1 hr2 admin county town1 town2
TABLE: dict[tuple[Resource, str], tuple[Facts, bool, str, str]] = {
    # The directory: everyone reads it; only the admin changes it, the rest meet a role gate.
    ("unit", "U1"): (Facts(unit_id=U1), True, "AAAAAAAAAA", "FFFFFFAFFF"),
    ("community", "C1"): (Facts(community_id=C1), True, "AAAAAAAAAA", "FFFFFFAFFF"),
    ("station_kind", "a kind"): (Facts(), True, "AAAAAAAAAA", "FFFFFFAFFF"),
    ("county", "rankings, rules"): (Facts(), True, "AAAAAAAAAA", "FFFFFFAFFF"),
    # A community's map: hidden from another community's organizer only.
    ("grid", "of C1"): (Facts(community_id=C1), True, "AAAHAAAAAA", "FFAHFFAFFF"),
    ("station", "of C1"): (Facts(community_id=C1), True, "AAAHAAAAAA", "FFAHFFAFFF"),
    # A station's tokens: its organizer and the admin only; a member or HR who reads the station
    # is refused its token without learning more (the station itself they may read).
    ("station_token", "of C1"): (Facts(community_id=C1), True, "HHAHHHAHHH", "FFAHFFAFFF"),
    ("community_desk", "C1"): (
        Facts(community_id=C1, town_id=T1),
        True,
        "HHAHHHAAAH",
        "FFAHFFAFFF",
    ),
    # A member: the member, their organizer, their unit's HR and the admin read; the organizer
    # and the admin change. HR and the member themself may read but not change: 403.
    ("member", "M1"): (member_facts(M1, C1, U1), True, "AHAHAHAAHH", "FFAHFFAFFF"),
    ("member_service", "M1"): (member_facts(M1, C1, U1), True, "AHAHAHAAHH", "FFAHFFAFFF"),
    # The same member with their community's town looked up (a town office asking): the office
    # of that town reads them too (never changes), another town's office does not.
    ("member", "M1 in T1"): (member_facts(M1, C1, U1, T1), True, "AHAHAHAAAH", "FFAHFFAFFF"),
    ("member_service", "M1 in T1"): (
        member_facts(M1, C1, U1, T1),
        True,
        "AHAHAHAAAH",
        "FFAHFFAFFF",
    ),
    ("member_phone", "M1's in T1"): (
        member_facts(M1, C1, U1, T1),
        True,
        "HHAHHHAHHH",
        "FFAHFFAFFF",
    ),
    ("my_data", "M1's in T1"): (member_facts(M1, C1, U1, T1), True, "AHHHHHHHHH", "AHFFFFFFFF"),
    ("session", "M2 at C1"): (VISITING_SESSION, True, "HHAHHHAAHH", "FFAHFFAFFF"),
    ("session_feedback", "M2 at C1"): (VISITING_SESSION, True, "HHAAHHAAHH", "FFAAFFAFFF"),
    ("checkin", "M1's"): (Facts(member_id=M1), True, "AHHHHHHHHH", "AHFFFFFFFF"),
    ("reminders", "M1's"): (Facts(member_id=M1), True, "AHHHHHHHHH", "AHFFFFFFFF"),
    # Personal information care: a phone in full for who must call (the member's organizer and
    # the admin), the member's own data for the member alone, the access log for the admin.
    ("member_phone", "M1's"): (member_facts(M1, C1, U1), True, "HHAHHHAHHH", "FFAHFFAFFF"),
    ("my_data", "M1's"): (member_facts(M1, C1, U1), True, "AHHHHHHHHH", "AHFFFFFFFF"),
    ("access_log", "the county's"): (Facts(), True, "HHHHHHAHHH", "FFFFFFAFFF"),
    ("community_rating", "M1 of C1"): (
        Facts(member_id=M1, community_id=C1),
        True,
        "AHHHHHHHHH",
        "AHFFFFFFFF",
    ),
    # A unit's figures: its HR and the admin.
    ("unit_desk", "U1"): (Facts(unit_id=U1), True, "HHHHAHAHHH", "FFFFAHAFFF"),
    # The unit's loop: its roster is the unit's; a report is confirmed by the member's community.
    ("unit_roster", "U1"): (Facts(unit_id=U1), True, "HHHHAHAHHH", "FFFFAHAFFF"),
    ("report_receipt", "M1"): (member_facts(M1, C1, U1), True, "AHAHAHAHHH", "FFAHFFAFFF"),
    # The three lists and campaigns.
    ("wish", "of C1, M1's"): (WISH, True, "AHAHAHAAHH", "FFAHFFAFFF"),
    # Only the assignee (and whoever fulfilled it) and the community see it: another member or
    # HR gets the 404 of a wish that does not exist, not a 403 `not_assignee`.
    ("wish_assignment", "of C1, M1's"): (WISH, True, "AHAHAHAAHH", "AHFFAHFFFF"),
    ("resource", "U1 to C1"): (
        Facts(unit_id=U1, community_id=C1),
        True,
        "HHAHAHAAHH",
        "FFFFAHAFFF",
    ),
    ("resource", "U1 county-wide"): (Facts(unit_id=U1), True, "HHAAAHAAHH", "FFFFAHAFFF"),
    ("project", "C1 with U1"): (
        Facts(community_id=C1, unit_id=U1),
        True,
        "HHAHAHAAHH",
        "FFAHFFAFFF",
    ),
    ("campaign", "C1, U1 sent"): (
        Facts(community_id=C1, units=frozenset({U1})),
        True,
        "HHAHAHAAHH",
        "FFAHFFAFFF",
    ),
    # Service slots: a notice board anyone reads; the roster its community and HR (HR's rows
    # confined to its unit by the list scope); a sign-up the member's own.
    ("activity", "of C1"): (Facts(community_id=C1), True, "AAAAAAAAAA", "FFAFFFAFFF"),
    ("activity_roster", "of C1"): (Facts(community_id=C1), True, "HHAHAAAHHH", "FFAHFFAFFF"),
    ("activity_signup", "M1's"): (Facts(member_id=M1), True, "AHHHHHHHHH", "AHFFFFFFFF"),
    # Excused weeks: the member (or their organizer) asks, the organizer decides, HR follows.
    ("excusal", "M1's, asked in C1"): (member_facts(M1, C1, U1), True, "AHAHAHAAHH", "FFAHFFAFFF"),
    ("excusal_request", "for M1"): (member_facts(M1, C1, U1), True, "AHAHAHAHHH", "AHAHFFAFFF"),
    ("excusal", "M1's in T1"): (member_facts(M1, C1, U1, T1), True, "AHAHAHAAAH", "FFAHFFAFFF"),
    # Asking for M1 stays with the member and their organizer: the town office only reads.
    ("excusal_request", "for M1 in T1"): (
        member_facts(M1, C1, U1, T1),
        True,
        "AHAHAHAHHH",
        "AHAHFFAFFF",
    ),
    # Standing posts: `also_community_id` is the calling member's community.
    ("post", "of C1, to a member of C1"): (POST_C1, True, "AAAHHHAHHH", "FFAHFFAFFF"),
    ("post", "of C1, to a member of C2"): (POST_C2, True, "HHAHHHAHHH", "FFAHFFAFFF"),
    ("post", "of C1, held by M1 who moved"): (POST_HELD, True, "AHAHHHAHHH", "FFAHFFAFFF"),
    ("post_claim", "of C1, by a member of C1"): (POST_C1, True, "AAAHHHAHHH", "AAFFFFFFFF"),
    ("post_claim", "of C1, by a member of C2"): (POST_C2, True, "HHAHHHAHHH", "HHFFFFFFFF"),
    ("post_claim", "held by M1 who moved"): (POST_HELD, True, "AHAHHHAHHH", "AHFFFFFFFF"),
    # Operations.
    ("import", "rows of C1"): (Facts(community_id=C1), True, "AAAAAAAAAA", "FFAFFFAFFF"),
    ("token", "M1's, in the path"): (Facts(token_id="tok-m1"), True, "AHHHHHAHHH", "AHHHHHAHHH"),
    ("token", "M1's, in the body"): (Facts(token_id="tok-m1"), False, "AFFFFFAFFF", "AFFFFFAFFF"),
    ("token_issue", "any"): (Facts(), True, "HHHHHHAHHH", "FFFFFFAFFF"),
    # Check-ins made for a member (issue 14): the organizer of both the station's and the
    # member's community; the member's team leader.
    ("assisted_checkin", "M1 of C1 at C1"): (
        Facts(community_id=C1, also_community_id=C1, member_id=M1),
        True,
        "HHAHHHAHHH",
        "FFAHFFAFFF",
    ),
    ("assisted_checkin", "M2 of C2 at C1"): (
        Facts(community_id=C1, also_community_id=C2, member_id=M2),
        True,
        "HHHHHHAHHH",
        "FFHHFFAFFF",
    ),
    ("team_checkin", "M2 led by M1"): (
        Facts(member_id=M2, community_id=C1, members=frozenset({M1})),
        True,
        "AHHHHHHHHH",
        "AHFFFFFFFF",
    ),
    # Named in a request body: refused with 403 where a 404 would hide nothing.
    ("member_service", "M1, in a body"): (
        member_facts(M1, C1, U1),
        False,
        "AFAFAFAAFF",
        "FFAFFFAFFF",
    ),
    # Towns are the directory: everyone reads them; only the admin changes them.
    ("town", "T1"): (Facts(town_id=T1), True, "AAAAAAAAAA", "FFFFFFAFFF"),
    # Roll-ups: the county's for the admin and the county office; a town's also for its town's
    # office; a community's also for its organizer and its town's office. Nobody changes them.
    ("rollup", "the county"): (Facts(), True, "HHHHHHAAHH", "FFFFFFAFFF"),
    ("rollup", "T1"): (Facts(town_id=T1), True, "HHHHHHAAAH", "FFFFFFAFFF"),
    ("rollup", "C1 in T1"): (
        Facts(community_id=C1, town_id=T1),
        True,
        "HHAHHHAAAH",
        "FFFFFFAFFF",
    ),
    # Records of service by the national rules (issue 15): a community's signers are set by its
    # organizer and its town's office (the county office changes nothing); a member's national
    # volunteer number by the member and their unit's HR; a wish's resident contact in full for
    # the community and the assignee who accepted it (the route names them in the facts).
    ("community_signers", "C1 in T1"): (
        Facts(community_id=C1, town_id=T1),
        True,
        "AAAAAAAAAA",
        "FFAFFFAFAF",
    ),
    ("volunteer_no", "M1's"): (member_facts(M1, C1, U1), True, "AHAHAHAAHH", "AHFFAHAFFF"),
    ("wish_contact", "of C1, accepted by M1"): (WISH, True, "AHAHAHAHHH", "FFFFFFAFFF"),
}


def _rows() -> list[tuple[Resource, str, Action, Facts, bool, str]]:
    out: list[tuple[Resource, str, Action, Facts, bool, str]] = []
    for (resource, label), (facts, hideable, read, change) in TABLE.items():
        out.append((resource, label, "read", facts, hideable, read))
        out.append((resource, label, "change", facts, hideable, change))
    return out


@pytest.mark.parametrize(
    ("resource", "label", "action", "facts", "hideable", "expected"),
    _rows(),
    ids=[f"{r[0]} ({r[1]}) {r[2]}" for r in _rows()],
)
def test_the_table(
    resource: Resource, label: str, action: Action, facts: Facts, hideable: bool, expected: str
) -> None:
    assert len(expected) == len(WHO)
    letter = {d: c for c, d in CODE.items()}
    got = "".join(
        letter[decide(p, resource, action, facts, hideable=hideable)] for p in WHO.values()
    )
    assert got == expected, f"{resource} ({label}) {action}: {' '.join(WHO)}"


def test_a_station_tablet_assists_only_its_own_communitys_members() -> None:
    from services.access import screen_may_assist

    assert screen_may_assist(C1, member_facts(M1, C1, U1))
    assert not screen_may_assist(C1, member_facts(M2, C2, U2))
    assert not screen_may_assist(C1, Facts())


def test_every_resource_has_a_row() -> None:
    assert {r for r, _ in TABLE} == set(RESOURCES)


def test_a_role_outside_the_gate_is_never_allowed_a_change() -> None:
    facts = [f for f, *_ in TABLE.values()] + [Facts()]
    for resource, rule in RULES.items():
        for p in WHO.values():
            if p.role in rule.change_roles:
                continue
            assert not may_ever_change(p, resource)
            for f in facts:
                assert not allows(p, resource, "change", f), (resource, p.role, f)
                assert decide(p, resource, "change", f) is Decision.FORBID


def test_a_subject_of_another_kind_is_not_a_scope() -> None:
    # An organizer whose community id happens to equal a member id reads nothing of the member.
    odd = Principal("organizer", M1, "t", 1)
    assert decide(odd, "member", "read", member_facts(M1, C1, U1)) is Decision.HIDE
    assert decide(odd, "checkin", "change", Facts(member_id=M1)) is Decision.FORBID
    # Missing facts never match a subject.
    assert decide(WHO["org1"], "community_desk", "read", Facts()) is Decision.HIDE


def test_refusals_map_to_statuses() -> None:
    assert [d.status for d in Decision] == [200, 403, 404]


#                                  m1    m2    org1  org2  hr1   hr2   admin county town1 town2
SCOPES: dict[Resource, tuple[str, ...]] = {
    "member": ("m:1", "m:2", "c:1", "c:2", "u:1", "u:2", "*", "*", "-", "-"),
    "wish": ("m:1", "m:2", "c:1", "c:2", "u:1", "u:2", "*", "*", "-", "-"),
    "grid": ("*", "*", "c:1", "c:2", "*", "*", "*", "*", "*", "*"),
    "station": ("*", "*", "c:1", "c:2", "*", "*", "*", "*", "*", "*"),
    "unit": ("*",) * 10,
    "community": ("*",) * 10,
    "station_kind": ("*",) * 10,
    "resource": ("-", "-", "c:1", "c:2", "u:1", "u:2", "*", "*", "-", "-"),
    "project": ("-", "-", "c:1", "c:2", "u:1", "u:2", "*", "*", "-", "-"),
    "campaign": ("-", "-", "c:1", "c:2", "-", "-", "*", "*", "-", "-"),
    "community_desk": ("-", "-", "c:1", "c:2", "-", "-", "*", "*", "-", "-"),
    "town": ("*",) * 10,
    "activity": ("*", "*", "c:1", "c:2", "*", "*", "*", "*", "*", "*"),
    "activity_roster": ("-", "-", "c:1", "c:2", "u:1", "u:2", "*", "-", "-", "-"),
    "post": ("m:1", "m:2", "c:1", "c:2", "-", "-", "*", "-", "-", "-"),
}


def _scope_code(s: ListScope | None) -> str:
    if s is None:
        return "-"
    if s.unconfined:
        return "*"
    if s.member_id:
        return "m:" + s.member_id[-1]
    if s.community_id:
        return "c:" + s.community_id[-1]
    assert s.unit_id
    return "u:" + s.unit_id[-1]


@pytest.mark.parametrize("resource", sorted(SCOPES))
def test_list_scopes(resource: Resource) -> None:
    got = tuple(_scope_code(list_scope(p, resource)) for p in WHO.values())
    assert got == SCOPES[resource], f"{resource}: {' '.join(WHO)}"


def test_a_list_of_something_unlisted_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        list_scope(WHO["m1"], "token")


def test_filters_stay_within_the_scope() -> None:
    assert within(None, C1) and within(C1, C1) and within(C2, None)
    assert not within(C2, C1)


@pytest.mark.parametrize(
    ("role", "subject", "kind", "assignee", "expected"),
    [
        ("member", M1, "member", M1, True),
        ("member", M2, "member", M1, False),
        ("hr", U1, "unit", U1, True),
        ("hr", U1, "member", U1, False),
        ("member", U1, "unit", U1, False),
        ("organizer", C1, "member", M1, False),
        ("admin", "admin", "unit", U1, False),
        ("member", M1, None, None, False),
    ],
)
def test_the_assignee_of_a_wish(
    role: str, subject: str, kind: str | None, assignee: str | None, expected: bool
) -> None:
    assert is_assignee(role, subject, kind, assignee) is expected


def test_a_recorded_command_is_judged_by_its_actor() -> None:
    of_c1 = Facts(community_id=C1)
    assert actor_may("organizer", C1, "wish", of_c1)
    assert actor_may("admin", "admin", "wish", of_c1)
    assert not actor_may("organizer", C2, "wish", of_c1)
    assert not actor_may("member", M1, "wish", of_c1)
    assert actor_may("hr", U1, "resource", Facts(unit_id=U1))
    assert not actor_may("hr", U2, "resource", Facts(unit_id=U1))
    # A role the policy does not know is allowed nothing.
    assert not actor_may("root", "admin", "wish", of_c1)


def test_a_town_office_is_judged_by_the_town_the_facts_name() -> None:
    # Without the community's town in the facts a town office reads nothing of it: callers
    # look the town up (api.deps.community_facts) only for the roles that need it.
    assert decide(WHO["town1"], "community_desk", "read", Facts(community_id=C1)) is Decision.HIDE
    # The town alone, without a community, is not a community's desk.
    assert decide(WHO["town1"], "community_desk", "read", Facts(town_id=T1)) is Decision.HIDE
    # A town office's subject is a town id: an organizer whose community id equals it is not it.
    odd = Principal("organizer", T1, "t", 1)
    assert decide(odd, "rollup", "read", Facts(town_id=T1)) is Decision.HIDE
    # A member is judged by their community's town: the town alone is not a member.
    assert decide(WHO["town1"], "member", "read", Facts(member_id=M1, town_id=T1)) is Decision.HIDE
    assert decide(WHO["town1"], "member", "read", member_facts(M1, C1, U1)) is Decision.HIDE


def test_roles_are_the_tokens_roles() -> None:
    for rule in RULES.values():
        assert rule.change_roles <= set(ROLES)
