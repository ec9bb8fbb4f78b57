"""The registry: units, communities, grids, station kinds, stations and members.

One package, a module per concern:

- `kinds`: the kinds of entry, the errors, and what a change is (ids, authors, diffs);
- `validation`: whether a change is well-formed and consistent with the registry;
- `store`: reading (a per-key cache) and changing (publish, then write through) entries, asking
  the access policy (`services.access`) before every read and change;
- `replica`: the check-in replica, what a scan needs of members, stations and grids, in memory.

Importers use this package's names; the modules are its rooms.
"""

from services.registry.kinds import (
    BUILTIN_STATION_KINDS,
    COMMUNITY,
    GRID,
    KINDS,
    MEMBER,
    STATION,
    STATION_KIND,
    TOWN,
    UNIT,
    Change,
    Conflict,
    Forbidden,
    HistoryEntry,
    Invalid,
    Kind,
    NotFound,
    RegistryError,
    actor,
    builtin_station_kind,
    diff,
    new_id,
)
from services.registry.replica import (
    CheckinRefs,
    CheckinReplica,
    GridRef,
    MemberRef,
    StationRef,
    member_ref,
    station_ref,
)
from services.registry.store import MAX_BATCH, Registry, facts_of, list_filter
from services.registry.validation import (
    CHINA_TZ,
    MEMBER_STATUSES,
    NAME_MAX,
    PHONE_RE,
    STATION_KIND_CODE_RE,
    Pending,
    Validator,
    normalize_phone,
)

__all__ = [
    "BUILTIN_STATION_KINDS",
    "CHINA_TZ",
    "COMMUNITY",
    "GRID",
    "KINDS",
    "MAX_BATCH",
    "MEMBER",
    "MEMBER_STATUSES",
    "NAME_MAX",
    "PHONE_RE",
    "STATION",
    "STATION_KIND",
    "STATION_KIND_CODE_RE",
    "TOWN",
    "UNIT",
    "Change",
    "CheckinRefs",
    "CheckinReplica",
    "Conflict",
    "Forbidden",
    "GridRef",
    "HistoryEntry",
    "Invalid",
    "Kind",
    "MemberRef",
    "NotFound",
    "Pending",
    "Registry",
    "RegistryError",
    "StationRef",
    "Validator",
    "actor",
    "builtin_station_kind",
    "diff",
    "facts_of",
    "list_filter",
    "member_ref",
    "new_id",
    "normalize_phone",
    "station_ref",
]
