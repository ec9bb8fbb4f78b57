"""Every Kafka topic the code uses, declared once: infra creates them, producers and consumers name them.

Retention is unlimited on the event log because it is the source of truth: ClickHouse can be
rebuilt by replaying it. Topics whose records are state (the latest version of a registry entry
or a session) are compacted, keyed by the entity id, so a replay still sees every entity.

Personal data is the exception (个人信息保护法: kept no longer than its purpose needs): raw scans,
reminders and their SMS outcomes follow `SCAN_RETENTION_YEARS`, the access log
`ACCESS_LOG_RETENTION_YEARS`, on the log as in the warehouse (`retained_as`, `Retention`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from services.settings import Settings

# Which retention setting a topic's records follow (None: kept for ever).
RetainedAs = Literal["scans", "access_log"]
DAY_MS = 86_400_000


def retention_ms(years: int) -> int:
    """Kafka's `retention.ms` for a retention of `years` (0: for ever, -1). The warehouse drops
    a year's rows together on 1 January local time, `years` years after that year began
    (`services.privacy.ttl_statement`), so no row lives there longer than `years` years; Kafka
    deletes a record once it is older than `retention.ms` (a segment at a time, so up to a
    segment's age later). 366-day years: the log never drops a scan the warehouse still holds,
    and a replay rebuilds the warehouse as it stands."""
    return -1 if years <= 0 else years * 366 * DAY_MS


@dataclass(frozen=True)
class Retention:
    """The retention settings, as the topics that follow them need them."""

    scan_years: int = Settings.model_fields["scan_retention_years"].default
    access_log_years: int = Settings.model_fields["access_log_retention_years"].default

    @classmethod
    def of(cls, settings: Settings) -> Retention:
        return cls(settings.scan_retention_years, settings.access_log_retention_years)

    def years(self, kind: RetainedAs) -> int:
        return self.scan_years if kind == "scans" else self.access_log_years


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    configs: dict[str, str] = field(default_factory=dict)
    retained_as: RetainedAs | None = None

    def __post_init__(self) -> None:
        # A compacted topic holds each key's latest state, which no age may delete.
        if self.compacted and self.retained_as is not None:
            raise ValueError(f"{self.name}: a compacted topic is kept, not retained by age")

    def kafka_configs(self, retention: Retention | None = None) -> dict[str, str]:
        """The topic's configuration; a retained topic's `retention.ms` from the settings
        (`retention`: the settings' defaults when not given)."""
        base = {"retention.ms": "-1"}
        if self.compacted:
            base["cleanup.policy"] = "compact"
        if self.retained_as is not None:
            years = (retention or Retention()).years(self.retained_as)
            base["retention.ms"] = str(retention_ms(years))
        base.update(self.configs)
        return base


# Scans are keyed by member id, so one member's scans stay ordered in one partition and the
# session agent owns that member's state. Partition counts bound how far workers scale out.
CHECKINS = TopicSpec("checkins", partitions=6, retained_as="scans")
SESSIONS = TopicSpec("sessions", partitions=6, compacted=True)
UNITS = TopicSpec("registry.units", partitions=1, compacted=True)
COMMUNITIES = TopicSpec("registry.communities", partitions=1, compacted=True)
TOWNS = TopicSpec("registry.towns", partitions=1, compacted=True)
STATIONS = TopicSpec("registry.stations", partitions=1, compacted=True)
MEMBERS = TopicSpec("registry.members", partitions=3, compacted=True)
GRIDS = TopicSpec("registry.grids", partitions=1, compacted=True)
STATION_KINDS = TopicSpec("registry.station_kinds", partitions=1, compacted=True)
# Every registry change (who, what, when): not compacted, because the compacted topics above
# keep only each entry's latest version. Keyed by entity id, so one entry's history is ordered.
REGISTRY_HISTORY = TopicSpec("registry.history", partitions=3)
# Evaluations, keyed by feedback id; compacted because an edit replaces the earlier version.
FEEDBACK = TopicSpec("feedback", partitions=3, compacted=True)
# Requested transitions of wishes and resources (三单制), keyed by the item id so one item's
# commands stay ordered for the lists agent; the log keeps every one, refused ones too.
LIST_COMMANDS = TopicSpec("lists.commands", partitions=6)
# The agent's verdicts: each item's latest state, and the commands it refused with the reason.
WISHES = TopicSpec("lists.wishes", partitions=6, compacted=True)
RESOURCES = TopicSpec("lists.resources", partitions=3, compacted=True)
LIST_REJECTIONS = TopicSpec("lists.rejections", partitions=1)
# The accepted transitions, in the order the agent applied them: each item's audit trail.
LIST_TRANSITIONS = TopicSpec("lists.transitions", partitions=3)
# Service slots (活动) and sign-up: commands keyed by the activity id, so one partition orders
# everything that happens to one slot (two members racing for its last place); the agent's
# verdicts: each activity's latest state, each member's latest sign-up (keyed
# activity|member), and the refused commands.
ACTIVITY_COMMANDS = TopicSpec("activities.commands", partitions=6)
ACTIVITIES = TopicSpec("activities", partitions=3, compacted=True)
ACTIVITY_SIGNUPS = TopicSpec("activities.signups", partitions=6, compacted=True)
ACTIVITY_REJECTIONS = TopicSpec("activities.rejections", partitions=1)
CAMPAIGNS = TopicSpec("registry.campaigns", partitions=1, compacted=True)
# Organizer reviews of sessions, keyed by the session's member (co-partitioned with checkins,
# so the worker that owns the member's sessions applies them).
SESSION_REVIEWS = TopicSpec("session-reviews", partitions=6)
# The session agent's clock (see events.ClockTicked); one tick per partition is all that matters.
SESSION_CLOCK = TopicSpec("session-clock", partitions=6, compacted=True)
# Each member's latest weekly totals per station, keyed by member|week|station.
MEMBER_WEEKS = TopicSpec("member-weeks", partitions=6, compacted=True)
# Withdrawn bearer tokens, keyed by token id.
REVOCATIONS = TopicSpec("auth.revocations", partitions=1, compacted=True)
# Versions of the assessment rules, keyed by version number.
ASSESSMENT_RULES = TopicSpec("assessment-rules", partitions=1, compacted=True)
# Issued records of service, keyed by verification code.
SERVICE_RECORDS = TopicSpec("service-records", partitions=1, compacted=True)
# Phone activation codes, keyed by the code's HMAC; compacted: only the latest state (issued or
# redeemed) of a code matters, and it must survive restarts and replays.
ACTIVATIONS = TopicSpec("activations", partitions=1, compacted=True)
# Reminders created for a member's inbox (or a community's, for the organizer), keyed by the
# recipient id; their ids are derived from kind, recipient and period, so a repeated decision
# is the same event.
NOTIFICATIONS = TopicSpec("notifications", partitions=3, retained_as="scans")
# What became of each send beyond the inbox (sent, failed, no address), keyed by notification.
NOTIFICATION_DELIVERIES = TopicSpec("notification-deliveries", partitions=1, retained_as="scans")
# A member's choice per kind of reminder, keyed member|kind: only the latest matters.
REMINDER_PREFERENCES = TopicSpec("reminder-preferences", partitions=1, compacted=True)
# Who read whose personal data (services.events.PersonalDataRead), keyed by the reader; kept
# ACCESS_LOG_RETENTION_YEARS, on the log as in the ClickHouse table.
ACCESS_LOG = TopicSpec("access-log", partitions=1, retained_as="access_log")
# A member's WeChat openid for subscription messages, keyed by member: only the latest matters.
WECHAT_BINDINGS = TopicSpec("wechat-bindings", partitions=1, compacted=True)
# A unit's roster lines, keyed unit|phone: only the latest version of a line matters.
UNIT_ROSTERS = TopicSpec("unit-rosters", partitions=1, compacted=True)
# Communities' receipts of members' reports (报到回执), keyed by member: the audit trail, kept.
REPORT_RECEIPTS = TopicSpec("report-receipts", partitions=1)
# Excused-week requests and their decisions, keyed by member id (a member's requests in order).
EXCUSALS = TopicSpec("excusals", partitions=3)
# Standing posts' steps (created, claimed, decided, left), keyed by post id.
POSTS = TopicSpec("posts", partitions=3)
# Each member's latest attendance of service slots per week (the drill-down's no-shows), keyed
# by member|week: only the latest tally matters.
SLOT_WEEKS = TopicSpec("slot-weeks", partitions=1, compacted=True)
# Invalid messages with the reason in headers; kept a month for inspection and replay.
DEAD_LETTER = TopicSpec("dead-letter", partitions=1, configs={"retention.ms": str(30 * 86400_000)})

# The faust app's id: its consumer group, and the prefix faust gives its own topics.
STREAMS_APP_ID = "volunteer-streams"


def changelog(table: str, partitions: int) -> TopicSpec:
    """The changelog topic faust keeps for one of the app's tables (`<app id>-<table>-changelog`,
    compacted, partitioned like the table). Declared here so a deploy creates it with the input
    topics: when faust made it at a worker's first start, the group's first rebalances could run
    before the new topic was in the leader's metadata ("Ignoring missing topic"), and the table's
    partitions were then not recovered until the next rebalance."""
    return TopicSpec(f"{STREAMS_APP_ID}-{table}-changelog", partitions, compacted=True)


# The session agent's tables, keyed by member id (co-partitioned with checkins).
MEMBER_STATE_TABLE = "member-session-state-v2"
PARTITION_INDEX_TABLE = "session-partition-index-v2"
# The lists agent's table, keyed by item id (co-partitioned with lists.commands).
LIST_ITEM_TABLE = "list-item-state"
# The activities agent's table, keyed by activity id (co-partitioned with activities.commands).
ACTIVITY_STATE_TABLE = "activity-state"
STREAMS_CHANGELOGS: tuple[TopicSpec, ...] = (
    changelog(MEMBER_STATE_TABLE, CHECKINS.partitions),
    changelog(PARTITION_INDEX_TABLE, CHECKINS.partitions),
    changelog(LIST_ITEM_TABLE, LIST_COMMANDS.partitions),
    changelog(ACTIVITY_STATE_TABLE, ACTIVITY_COMMANDS.partitions),
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    REVOCATIONS,
    ASSESSMENT_RULES,
    SERVICE_RECORDS,
    ACTIVATIONS,
    CHECKINS,
    SESSIONS,
    UNITS,
    COMMUNITIES,
    TOWNS,
    STATIONS,
    MEMBERS,
    GRIDS,
    STATION_KINDS,
    REGISTRY_HISTORY,
    DEAD_LETTER,
    ACCESS_LOG,
    FEEDBACK,
    LIST_COMMANDS,
    WISHES,
    RESOURCES,
    LIST_REJECTIONS,
    LIST_TRANSITIONS,
    CAMPAIGNS,
    ACTIVITY_COMMANDS,
    ACTIVITIES,
    ACTIVITY_SIGNUPS,
    ACTIVITY_REJECTIONS,
    SESSION_REVIEWS,
    SESSION_CLOCK,
    MEMBER_WEEKS,
    NOTIFICATIONS,
    NOTIFICATION_DELIVERIES,
    REMINDER_PREFERENCES,
    WECHAT_BINDINGS,
    UNIT_ROSTERS,
    REPORT_RECEIPTS,
    EXCUSALS,
    POSTS,
    SLOT_WEEKS,
    *STREAMS_CHANGELOGS,
)


def topic_name(settings: Settings, spec: TopicSpec) -> str:
    return settings.topic(spec.name)
