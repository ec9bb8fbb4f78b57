"""Service slots (活动) and sign-up (报名), issue 14: each activity's latest state, each
member's latest sign-up per activity, and the commands the activities agent refused.

ReplacingMergeTree by revision/version as the other state tables: a re-delivered row is the same
row, and reads use FINAL. Attendance is not stored: it is read from sessions (the one counting
rule), so a review that changes a session changes the roster too.
"""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    f"""
    CREATE TABLE IF NOT EXISTS activities (
        community_id String,
        title String,
        description String,
        station_id Nullable(String),
        grid_id Nullable(String),
        starts_at DateTime64(3, 'UTC'),
        ends_at DateTime64(3, 'UTC'),
        capacity UInt32,
        signup_deadline DateTime64(3, 'UTC'),
        cancel_deadline DateTime64(3, 'UTC'),
        unit_ids Array(String),
        rule_id Nullable(String),
        activity_id String,
        revision UInt32,
        status LowCardinality(String),
        placed UInt32,
        waiting UInt32,
        created_by String,
        created_at DateTime64(3, 'UTC'),
        updated_at DateTime64(3, 'UTC'),
        last_event_id String
    ) ENGINE = ReplacingMergeTree(revision)
    ORDER BY (community_id, activity_id)
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS activity_signups (
        activity_id String,
        member_id String,
        unit_id String,
        community_id String,
        version UInt32,
        status LowCardinality(String),
        seq UInt32,
        signed_up_at DateTime64(3, 'UTC'),
        updated_at DateTime64(3, 'UTC'),
        last_event_id String,
        signup_event_id String,
        command_event_id String
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (activity_id, member_id)
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS activity_rejections (
        event_id String,
        command_event_id String,
        activity_id String,
        action LowCardinality(String),
        actor_role LowCardinality(String),
        actor_id String,
        member_id Nullable(String),
        code LowCardinality(String),
        reason String,
        occurred_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (activity_id, event_id)
    SETTINGS {DEDUP}
    """,
]
