"""The event contract: every message on Kafka is one of these models, on both sides of the log.

Each event carries `event_id`, `event_type`, `schema_version` and `occurred_at` (UTC). Ids are
deterministic where a retry must map to the same event (a re-sent scan, a re-emitted session),
which is what makes every consumer's duplicates harmless. One module per domain; importing this
package registers every type with `parse_event`.
"""

from services.events.activations import ActivationRecorded
from services.events.assessment import AssessmentRulesPublished
from services.events.auth import TokenRevoked
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
from services.events.checkins import (
    AssistKind,
    CheckinScanned,
    ScanProof,
    SessionRecorded,
    SessionStatus,
)
from services.events.engagement import (
    GRADES,
    Campaign,
    CampaignUpserted,
    FeedbackKind,
    FeedbackRecorded,
    Grade,
    GridAssignment,
    ListCommand,
    ListCommandRejected,
    ListTransitionApplied,
    ResourceFields,
    ResourceRecorded,
    WishFields,
    WishRecorded,
)
from services.events.leave import ExcusalRecorded, PostRecorded
from services.events.notifications import (
    NotificationCreated,
    NotificationDelivered,
    NotificationKind,
    ReminderKind,
    ReminderPreferenceSet,
    WechatBound,
)
from services.events.privacy import ACCESS_KINDS, AccessKind, PersonalDataRead
from services.events.records import ServiceRecordIssued
from services.events.registry import (
    BackdatedPosterPolicy,
    Community,
    CommunityUpserted,
    FieldChange,
    Grid,
    GridLevel,
    GridUpserted,
    Member,
    MemberStatus,
    MemberUpserted,
    RegistryChanged,
    RegistryRecord,
    Station,
    StationKind,
    StationKindDef,
    StationKindUpserted,
    StationUpserted,
    Town,
    TownUpserted,
    Unit,
    UnitUpserted,
)
from services.events.rosters import ReportConfirmed, RosterEntrySet
from services.events.sessions import (
    ClockTicked,
    MemberWeekRecorded,
    ReviewAction,
    SessionReviewed,
)
from services.events.slot_weeks import SlotWeekTallied

__all__ = [
    "EVENT_TYPES",
    "AssessmentRulesPublished",
    "AssistKind",
    "BackdatedPosterPolicy",
    "CheckinScanned",
    "Community",
    "CommunityUpserted",
    "Event",
    "FieldChange",
    "Grid",
    "GridLevel",
    "GridUpserted",
    "Member",
    "MemberStatus",
    "MemberUpserted",
    "RegistryChanged",
    "RegistryRecord",
    "ScanProof",
    "ServiceRecordIssued",
    "SessionRecorded",
    "SessionStatus",
    "Station",
    "StationKind",
    "StationKindDef",
    "StationKindUpserted",
    "StationUpserted",
    "TokenRevoked",
    "Town",
    "TownUpserted",
    "Unit",
    "UnitUpserted",
    "UnknownEventType",
    "UtcDatetime",
    "derived_id",
    "event_type",
    "parse_event",
    "utcnow",
]

__all__ += [
    "GRADES",
    "Campaign",
    "CampaignUpserted",
    "FeedbackKind",
    "FeedbackRecorded",
    "Grade",
    "GridAssignment",
    "ListCommand",
    "ListCommandRejected",
    "ListTransitionApplied",
    "ResourceFields",
    "ResourceRecorded",
    "WishFields",
    "WishRecorded",
]

__all__ += ["ClockTicked", "MemberWeekRecorded", "ReviewAction", "SessionReviewed"]

__all__ += ["ActivationRecorded"]

__all__ += [
    "NotificationCreated",
    "NotificationDelivered",
    "NotificationKind",
    "ReminderKind",
    "ReminderPreferenceSet",
    "ReportConfirmed",
    "RosterEntrySet",
    "WechatBound",
]

__all__ += ["ACCESS_KINDS", "AccessKind", "PersonalDataRead"]
# Service slots and sign-up (issue 14).
from services.events.activities import (  # noqa: E402
    ActivityCommand,
    ActivityCommandRejected,
    ActivityFields,
    ActivityRecorded,
    ActivitySpec,
    SignupFields,
    SignupRecorded,
)

__all__ += [
    "ActivityCommand",
    "ActivityCommandRejected",
    "ActivityFields",
    "ActivityRecorded",
    "ActivitySpec",
    "SignupFields",
    "SignupRecorded",
]

__all__ += ["ExcusalRecorded", "PostRecorded"]
__all__ += ["SlotWeekTallied"]
