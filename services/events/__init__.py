"""The event contract: every message on Kafka is one of these models, on both sides of the log.

Each event carries `event_id`, `event_type`, `schema_version` and `occurred_at` (UTC). Ids are
deterministic where a retry must map to the same event (a re-sent scan, a re-emitted session),
which is what makes every consumer's duplicates harmless. One module per domain; importing this
package registers every type with `parse_event`.
"""

from services.events.base import (
    EVENT_TYPES,
    Event,
    UnknownEventType,
    UtcDatetime,
    derived_id,
    event_type,
    parse_event,
    utcnow,
)
from services.events.checkins import CheckinScanned, SessionRecorded, SessionStatus
from services.events.registry import (
    Community,
    CommunityUpserted,
    Member,
    MemberUpserted,
    RegistryRecord,
    Station,
    StationKind,
    StationUpserted,
    Unit,
    UnitUpserted,
)

__all__ = [
    "EVENT_TYPES",
    "CheckinScanned",
    "Community",
    "CommunityUpserted",
    "Event",
    "Member",
    "MemberUpserted",
    "RegistryRecord",
    "SessionRecorded",
    "SessionStatus",
    "Station",
    "StationKind",
    "StationUpserted",
    "Unit",
    "UnitUpserted",
    "UnknownEventType",
    "UtcDatetime",
    "derived_id",
    "event_type",
    "parse_event",
    "utcnow",
]
