"""Every Kafka topic the code uses, declared once: infra creates them, producers and consumers name them.

Retention is unlimited on the event log because it is the source of truth: ClickHouse can be
rebuilt by replaying it. Topics whose records are state (the latest version of a registry entry
or a session) are compacted, keyed by the entity id, so a replay still sees every entity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    configs: dict[str, str] = field(default_factory=dict)

    def kafka_configs(self) -> dict[str, str]:
        base = {"retention.ms": "-1"}
        if self.compacted:
            base["cleanup.policy"] = "compact"
        base.update(self.configs)
        return base


# Scans are keyed by member id, so one member's scans stay ordered in one partition and the
# session agent owns that member's state. Partition counts bound how far workers scale out.
CHECKINS = TopicSpec("checkins", partitions=6)
SESSIONS = TopicSpec("sessions", partitions=6, compacted=True)
UNITS = TopicSpec("registry.units", partitions=1, compacted=True)
COMMUNITIES = TopicSpec("registry.communities", partitions=1, compacted=True)
STATIONS = TopicSpec("registry.stations", partitions=1, compacted=True)
MEMBERS = TopicSpec("registry.members", partitions=3, compacted=True)
# Invalid messages with the reason in headers; kept a month for inspection and replay.
DEAD_LETTER = TopicSpec("dead-letter", partitions=1, configs={"retention.ms": str(30 * 86400_000)})

ALL_TOPICS: tuple[TopicSpec, ...] = (
    CHECKINS,
    SESSIONS,
    UNITS,
    COMMUNITIES,
    STATIONS,
    MEMBERS,
    DEAD_LETTER,
)


def topic_name(settings: Settings, spec: TopicSpec) -> str:
    return settings.topic(spec.name)
