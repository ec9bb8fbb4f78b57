"""Registry, raw scans and sessions.

Registry tables and sessions are ReplacingMergeTree on a version: every read sees the latest
with FINAL, and a re-delivered row is harmless. The dedup window makes ClickHouse drop a batch
re-sent with the same insert_deduplication_token (a sink retry after a timeout).
"""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    f"""
    CREATE TABLE IF NOT EXISTS units (
        id String,
        name String,
        version UInt64,
        updated_at DateTime64(3, 'UTC'),
        updated_by String
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS communities (
        id String,
        name String,
        version UInt64,
        updated_at DateTime64(3, 'UTC'),
        updated_by String
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS stations (
        id String,
        community_id String,
        name String,
        kind LowCardinality(String),
        lat Nullable(Float64),
        lon Nullable(Float64),
        version UInt64,
        updated_at DateTime64(3, 'UTC'),
        updated_by String
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS members (
        id String,
        name String,
        unit_id String,
        community_id String,
        version UInt64,
        updated_at DateTime64(3, 'UTC'),
        updated_by String
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS checkins (
        event_id String,
        member_id String,
        station_id String,
        station_community_id String,
        unit_id String,
        member_community_id String,
        action LowCardinality(String),
        client_event_id String,
        scanned_at DateTime64(3, 'UTC'),
        received_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(scanned_at)
    ORDER BY (member_id, event_id)
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS sessions (
        session_id String,
        revision UInt32,
        member_id String,
        unit_id String,
        member_community_id String,
        station_id String,
        station_community_id String,
        start DateTime64(3, 'UTC'),
        end Nullable(DateTime64(3, 'UTC')),
        credited_seconds UInt32,
        status LowCardinality(String),
        flags Array(String),
        checkin_event_id Nullable(String),
        checkout_event_id Nullable(String)
    ) ENGINE = ReplacingMergeTree(revision)
    ORDER BY (member_id, session_id)
    SETTINGS {DEDUP}
    """,
]
