"""The drill-down's no-shows (issue 15): each member's attendance of service slots per week.

`slot_weeks` holds the latest tally per (week, member) that `services.slot_weeks_job` decided
with the one attendance rule (placed, attended, no-shows of the slots that started in the week
and are over). ReplacingMergeTree on the decision's time: a later tally (after a review, a
withdrawal) replaces the earlier, and a re-delivered one is the same row. Tallies are decided
from the warehouse and published to Kafka like reminders, so a replay restores them; nothing
before this migration is rolled up here (the job re-tallies the weeks it looks back over).
"""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    f"""
    CREATE TABLE IF NOT EXISTS slot_weeks (
        week LowCardinality(String),
        member_id String,
        placed UInt32,
        attended UInt32,
        no_shows UInt32,
        event_id String,
        decided_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(decided_at)
    ORDER BY (week, member_id)
    SETTINGS {DEDUP}
    """,
]
