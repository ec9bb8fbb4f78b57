"""Session revisions that can be voided or reviewed, the review audit trail, weekly activity.

Weekly figures are not a materialised view over `sessions`: an MV sums every inserted row,
duplicates included, before ReplacingMergeTree merges them away. Instead the session agent keeps
each member's weekly totals per station in its state and emits the latest one; `member_weeks`
keeps the highest version per (week, member, station), so a re-emitted or re-delivered record
replaces rather than adds. Its key starts with the week: a dashboard reads one week's rows.
"""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS member_grid_id Nullable(String)",
    "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS voided UInt8 DEFAULT 0",
    # Rows written before this migration get the rule of SessionRecorded.counted.
    """
    ALTER TABLE sessions ADD COLUMN IF NOT EXISTS counted UInt8
        DEFAULT status NOT IN ('open', 'rejected') AND NOT has(flags, 'checkout_without_checkin')
    """,
    # A review looks a session up by id alone; the table is ordered by member first.
    "ALTER TABLE sessions ADD INDEX IF NOT EXISTS idx_session_id session_id TYPE bloom_filter GRANULARITY 4",
    "ALTER TABLE sessions ADD INDEX IF NOT EXISTS idx_station_community station_community_id TYPE bloom_filter GRANULARITY 4",
    f"""
    CREATE TABLE IF NOT EXISTS session_reviews (
        review_id String,
        session_id String,
        member_id String,
        station_community_id String,
        action LowCardinality(String),
        credited_seconds Nullable(UInt32),
        reason String,
        reviewer_role LowCardinality(String),
        reviewer_id String,
        reviewed_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (session_id, review_id)
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS member_weeks (
        week LowCardinality(String),
        member_id String,
        station_id String,
        station_community_id String,
        member_community_id String,
        member_grid_id Nullable(String),
        unit_id String,
        sessions UInt32,
        credited_seconds UInt64,
        version UInt64,
        as_of DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (week, member_id, station_id)
    SETTINGS {DEDUP}
    """,
]
