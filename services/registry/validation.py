"""Validation of registry changes: every field and every reference of an entry, before anything
is published (nothing half-written).

Who may make a change is not decided here but by the access policy (`services.access`), which
the store asks first; this module decides whether the change is well-formed and consistent
with the registry (references exist, grids nest, names and phones are unique).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

from services.events import Grid, Member, RegistryRecord
from services.privacy import looks_like_citizen_id
from services.registry.kinds import (
    BUILTIN_STATION_KINDS,
    COMMUNITY,
    GRID,
    MEMBER,
    STATION,
    STATION_KIND,
    TOWN,
    UNIT,
    Conflict,
    Invalid,
    Kind,
    NotFound,
)
from services.text import UnsafeText, check_line

# Mainland mobile numbers: 11 digits starting 13-19.
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
VOLUNTEER_NO_RE = re.compile(r"^[0-9A-Z](?:[0-9A-Z]|-(?=[0-9A-Z])){5,31}$")
STATION_KIND_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MEMBER_STATUSES = ("active", "transferred", "left")
NAME_MAX = 100
CHINA_TZ = timezone(timedelta(hours=8))


class Lookups(Protocol):
    """What validation reads of the registry (the store)."""

    def lookup(self, kind: Kind, id_: str) -> RegistryRecord:
        """The entry, through the per-key cache; raises NotFound."""
        ...

    def exists_raw(self, kind: Kind, id_: str) -> bool: ...

    def member_id_by_phone(self, phone: str) -> str | None: ...

    def grid_names(self, community_id: str) -> list[tuple[str, str, str | None]]:
        """(id, name, parent id) of every grid of the community."""
        ...

    def stored_station_kind_codes(self) -> set[str]: ...


class Validator:
    def __init__(self, store: Lookups) -> None:
        self.store = store

    def station_kind_codes(self, pending: Pending | None = None) -> set[str]:
        if pending is not None and pending.kind_codes is not None:
            return pending.kind_codes
        codes = set(BUILTIN_STATION_KINDS) | self.store.stored_station_kind_codes()
        if pending is not None:
            pending.kind_codes = codes
        return codes

    def check(
        self,
        kind: Kind,
        before: RegistryRecord | None,
        data: dict[str, Any],
        pending: Pending,
    ) -> None:
        """Raises Invalid or Conflict; normalises `data` in place (phone, dates)."""
        if kind is not STATION_KIND:
            _text(data, "name", kind)
        if (
            before is not None
            and kind in (GRID, STATION)
            and data.get("community_id") != _attr(before, "community_id")
        ):
            raise Invalid(
                f"invalid_{kind.name}",
                f"community_id: a {kind.label} cannot move to another community; create a new one",
            )

        if kind is STATION_KIND:
            code = data.get("id")
            if not isinstance(code, str) or not STATION_KIND_CODE_RE.match(code):
                raise Invalid(
                    "invalid_station_kind",
                    "code: lower-case letters, digits and _, starting with a letter, 2-40 long",
                )
            _text(data, "label", kind, max_len=20)
            if before is None and (
                code in BUILTIN_STATION_KINDS or self.store.exists_raw(kind, code)
            ):
                raise Conflict("station_kind_exists", f"code: station kind {code!r} already exists")
        elif kind is GRID:
            self._ref(COMMUNITY, data.get("community_id"), "community_id", pending)
            level, parent_id = data.get("level"), data.get("parent_id")
            if level == 4 and parent_id is not None:
                raise Invalid("invalid_grid", "parent_id: a level-4 grid has no parent grid")
            if level == 5:
                if not parent_id:
                    raise Invalid(
                        "invalid_grid", "parent_id: a level-5 grid needs its level-4 grid"
                    )
                parent = self._ref(GRID, parent_id, "parent_id", pending)
                assert isinstance(parent, Grid)
                if parent.level != 4 or parent.community_id != data.get("community_id"):
                    raise Invalid(
                        "invalid_grid",
                        "parent_id: must be a level-4 grid of the same community",
                    )
            if before is not None and level != _attr(before, "level"):
                raise Invalid("invalid_grid", "level: a grid's level cannot change")
            if self._grid_name_taken(data, pending):
                raise Conflict(
                    "grid_name_taken",
                    f"name: this community already has a level-{level} grid named {data['name']!r}"
                    + (" under the same parent" if level == 5 else ""),
                )
        elif kind is STATION:
            self._ref(COMMUNITY, data.get("community_id"), "community_id", pending)
            code = data.get("kind")
            if code not in self.station_kind_codes(pending):
                raise Invalid(
                    "unknown_station_kind",
                    f"kind: no station kind {code!r} (known: {', '.join(sorted(self.station_kind_codes(pending)))})",
                )
            _check_coordinates(data)
        elif kind is MEMBER:
            self._check_member(before, data, pending)
        elif kind is COMMUNITY and data.get("town_id") is not None:
            self._ref(TOWN, data.get("town_id"), "town_id", pending)

    def _check_member(
        self, before: RegistryRecord | None, data: dict[str, Any], pending: Pending
    ) -> None:
        self._ref(UNIT, data.get("unit_id"), "unit_id", pending)
        self._ref(COMMUNITY, data.get("community_id"), "community_id", pending)
        phone = data.get("phone")
        if phone is not None:
            phone = normalize_phone(str(phone))
            if phone is None:
                raise Invalid("invalid_phone", "phone: an 11-digit mainland mobile number")
            data["phone"] = phone
            owner = pending.phones.get(phone) or self.store.member_id_by_phone(phone)
            if owner is not None and (before is None or owner != before.id):
                # Named by no id: the owner may be outside the caller's scope (another
                # community's member), and the conflict must not be a lookup of who is registered.
                raise Conflict("phone_taken", f"phone: {phone} is already registered to a member")
            pending.phones[phone] = data["id"]
        grid_id = data.get("grid_id")
        if grid_id is not None:
            grid = self._ref(GRID, grid_id, "grid_id", pending)
            assert isinstance(grid, Grid)
            if grid.community_id != data.get("community_id"):
                raise Invalid(
                    "invalid_member",
                    "grid_id: the grid is not in the member's community",
                )
        status = data.get("status", "active")
        if status not in MEMBER_STATUSES:
            raise Invalid("invalid_member", f"status: one of {', '.join(MEMBER_STATUSES)}")
        reported = data.get("reported_on")
        if reported is not None:
            if isinstance(reported, str):
                try:
                    reported = date.fromisoformat(reported)
                except ValueError:
                    raise Invalid("invalid_member", "reported_on: a date YYYY-MM-DD") from None
                data["reported_on"] = reported
            if reported > datetime.now(CHINA_TZ).date():
                raise Invalid("invalid_member", "reported_on: lies in the future")
        branch = data.get("party_branch")
        if branch is not None and (not isinstance(branch, str) or len(branch) > NAME_MAX):
            raise Invalid("invalid_member", f"party_branch: at most {NAME_MAX} characters")
        if branch is not None:
            _safe(branch, "party_branch", MEMBER)
        number = data.get("volunteer_no")
        if number is not None:
            data["volunteer_no"] = normalize_volunteer_no(number)
        leader_id = data.get("team_leader_id")
        if leader_id is not None:
            # A team leader checks the member in with the team (POST /v1/team-checkins): an
            # active member of the same community, and not the member themself.
            if leader_id == data.get("id"):
                raise Invalid("invalid_member", "team_leader_id: a member does not lead themself")
            leader = self._ref(MEMBER, leader_id, "team_leader_id", pending)
            assert isinstance(leader, Member)
            if leader.community_id != data.get("community_id") or leader.status != "active":
                raise Invalid(
                    "invalid_member",
                    "team_leader_id: must be an active member of the member's community",
                )

    def _ref(self, kind: Kind, id_: Any, field: str, pending: Pending) -> RegistryRecord:
        # A reference to a missing entry is the caller's input error (422), not a missing URL.
        if not isinstance(id_, str) or not id_:
            raise Invalid(f"unknown_{kind.name}", f"{field}: required")
        hit = pending.records.get((kind.name, id_))
        if hit is not None:
            return hit
        try:
            return self.store.lookup(kind, id_)
        except NotFound:
            raise Invalid(
                f"unknown_{kind.name}", f"{field}: no {kind.label} with id {id_!r}"
            ) from None

    def _grid_name_taken(self, data: dict[str, Any], pending: Pending) -> bool:
        community_id = data["community_id"]
        if community_id not in pending.grid_communities:
            # One query per community and batch, not per grid: a county loads ~3,500 grids.
            pending.grid_communities.add(community_id)
            for id_, name, parent_id in self.store.grid_names(community_id):
                pending.grid_names.setdefault((community_id, parent_id, name), id_)
        key = (community_id, data.get("parent_id"), data["name"])
        taken = pending.grid_names.get(key)
        if taken is not None and taken != data["id"]:
            return True
        pending.grid_names[key] = data["id"]
        return False


class Pending:
    """What a batch has validated so far, so later items may refer to earlier ones."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], RegistryRecord] = {}
        self.phones: dict[str, str] = {}
        self.grid_names: dict[tuple[str, str | None, str], str] = {}
        self.grid_communities: set[str] = set()
        self.kind_codes: set[str] | None = None

    def add(self, kind: Kind, rec: RegistryRecord) -> None:
        self.records[(kind.name, rec.id)] = rec
        if kind is STATION_KIND and self.kind_codes is not None:
            self.kind_codes.add(rec.id)


def _attr(rec: RegistryRecord, name: str) -> Any:
    return getattr(rec, name, None)


def clean(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _text(data: dict[str, Any], field: str, kind: Kind, max_len: int = NAME_MAX) -> None:
    v = data.get(field)
    if not isinstance(v, str) or not v:
        raise Invalid(f"invalid_{kind.name}", f"{field}: required, may not be empty")
    if len(v) > max_len:
        raise Invalid(f"invalid_{kind.name}", f"{field}: at most {max_len} characters")
    _safe(v, field, kind)


def _safe(value: str, field: str, kind: Kind) -> None:
    # Every way into the registry (the API, the member import, bulk creation, the demo) passes
    # here, so the rule of services.text holds for stored names whatever the caller checked.
    try:
        check_line(value)
    except UnsafeText as exc:
        raise Invalid(f"invalid_{kind.name}", f"{field}: {exc}") from None


def normalize_volunteer_no(raw: Any) -> str:
    """The national volunteer number (志愿者编号) as stored: upper case, without spaces; letters,
    digits and inner dashes, 6-32 long. Its exact scheme is the national system's, so only its
    shape is checked, and anything shaped like a citizen ID number is refused: the registry
    never holds one (personal-information minimum)."""
    if not isinstance(raw, str):
        raise Invalid("invalid_volunteer_no", "volunteer_no: a text of letters and digits")
    number = re.sub(r"\s", "", raw).upper()
    if looks_like_citizen_id(number):
        raise Invalid(
            "citizen_id_refused",
            "volunteer_no: this is shaped like a citizen ID number, which is never stored;"
            " enter the volunteer number the national volunteer service system issued",
        )
    if not VOLUNTEER_NO_RE.match(number):
        raise Invalid(
            "invalid_volunteer_no",
            "volunteer_no: 6-32 letters and digits (dashes allowed between them)",
        )
    return number


def normalize_phone(raw: str) -> str | None:
    """An 11-digit mainland mobile, tolerating spaces, dashes and a +86 prefix; None if not one."""
    digits = re.sub(r"[\s\-]", "", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits if PHONE_RE.match(digits) else None


def _check_coordinates(data: dict[str, Any]) -> None:
    """A station's place is both coordinates or neither (the travel-speed flag measures the
    distance between two stations; half a place measures nothing). The ranges are checked by the
    API's models."""
    lat, lon = data.get("lat"), data.get("lon")
    if (lat is None) != (lon is None):
        raise Invalid("invalid_station", "lat, lon: give both coordinates or neither")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Invalid("invalid_station", "lat, lon: latitude -90..90, longitude -180..180")
