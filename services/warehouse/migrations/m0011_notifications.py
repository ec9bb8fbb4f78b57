"""Reminders: notifications (inboxes), what became of their sends, members' preferences."""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    # One row per notification id (a decision repeated by another process or after a restart is
    # the same id): the inbox reads it FINAL.
    f"""
    CREATE TABLE IF NOT EXISTS notifications (
        notification_id String,
        kind LowCardinality(String),
        recipient_kind LowCardinality(String),
        recipient_id String,
        community_id String,
        week String,
        title String,
        body String,
        created_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (recipient_id, notification_id)
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS notification_deliveries (
        notification_id String,
        recipient_id String,
        channel LowCardinality(String),
        status LowCardinality(String),
        attempts UInt8,
        error String,
        at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(at)
    ORDER BY (notification_id, channel)
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS reminder_preferences (
        member_id String,
        kind LowCardinality(String),
        enabled Bool,
        set_by String,
        set_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(set_at)
    ORDER BY (member_id, kind)
    SETTINGS {DEDUP}
    """,
]
