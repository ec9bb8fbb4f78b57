"""The personal-data access log (issue 15): who read whose personal data, one row per read.

Keyed by the event id (a re-sent event is the same row); ordered by time, since the admin pages
it newest first and filters by a period. `member_ids` lists whose data was read: a member's own
entries are found with `has(member_ids, ...)`, helped by a bloom filter.
"""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    f"""
    CREATE TABLE IF NOT EXISTS access_log (
        event_id String,
        kind LowCardinality(String),
        actor_role LowCardinality(String),
        actor_id String,
        member_ids Array(String),
        route String,
        detail String,
        at DateTime64(3, 'UTC'),
        INDEX idx_member_ids member_ids TYPE bloom_filter GRANULARITY 4
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYear(at)
    ORDER BY (at, event_id)
    SETTINGS {DEDUP}
    """,
    # The retention last applied to each table (services.warehouse.retention): the migrate step
    # alters a table's TTL only when RETENTION settings changed, since a new TTL rewrites parts.
    """
    CREATE TABLE IF NOT EXISTS retention_applied (
        table_name String,
        years UInt32,
        applied_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(applied_at)
    ORDER BY table_name
    """,
]
