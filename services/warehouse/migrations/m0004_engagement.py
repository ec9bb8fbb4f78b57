"""Two-way feedback, the three lists (wishes, resources, refused commands) and campaigns.

Every table is a ReplacingMergeTree on the record's id (feedback id, wish id, ...) with its
version or revision: aggregates are computed at read time with FINAL over one scope and one
period, never by a materialized view, so a re-delivered row cannot be counted twice.
"""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    f"""
    CREATE TABLE IF NOT EXISTS feedback (
        feedback_id String,
        version UInt64,
        kind LowCardinality(String),
        member_id String,
        unit_id String,
        community_id String,
        session_id Nullable(String),
        period String,
        period_start Date,
        period_end Date,
        rating Nullable(UInt8),
        grade Nullable(String),
        comment String,
        author_role LowCardinality(String),
        author_id String,
        client_event_id Nullable(String),
        recorded_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY feedback_id
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS wishes (
        wish_id String,
        revision UInt32,
        status LowCardinality(String),
        community_id String,
        title String,
        description String,
        resident_name String,
        resident_contact String,
        assignee_kind Nullable(String),
        assignee_id Nullable(String),
        project_id Nullable(String),
        resource_id Nullable(String),
        evidence_session_id Nullable(String),
        fulfilled_by_member_id Nullable(String),
        fulfilled_by_unit_id Nullable(String),
        rating Nullable(UInt8),
        rating_comment String,
        created_at DateTime64(3, 'UTC'),
        updated_at DateTime64(3, 'UTC'),
        dispatched_at Nullable(DateTime64(3, 'UTC')),
        accepted_at Nullable(DateTime64(3, 'UTC')),
        done_at Nullable(DateTime64(3, 'UTC')),
        confirmed_at Nullable(DateTime64(3, 'UTC')),
        last_event_id String
    ) ENGINE = ReplacingMergeTree(revision)
    ORDER BY wish_id
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS resources (
        resource_id String,
        revision UInt32,
        status LowCardinality(String),
        unit_id String,
        community_id Nullable(String),
        title String,
        description String,
        project_id Nullable(String),
        wish_id Nullable(String),
        created_at DateTime64(3, 'UTC'),
        updated_at DateTime64(3, 'UTC'),
        last_event_id String
    ) ENGINE = ReplacingMergeTree(revision)
    ORDER BY resource_id
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS list_rejections (
        event_id String,
        command_event_id String,
        item_kind LowCardinality(String),
        item_id String,
        action LowCardinality(String),
        actor_role LowCardinality(String),
        actor_id String,
        code LowCardinality(String),
        reason String,
        occurred_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (item_id, event_id)
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS list_transitions (
        event_id String,
        command_event_id String,
        item_kind LowCardinality(String),
        item_id String,
        action LowCardinality(String),
        actor_role LowCardinality(String),
        actor_id String,
        revision UInt32,
        status LowCardinality(String),
        reason Nullable(String),
        occurred_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (item_id, revision, event_id)
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS campaigns (
        id String,
        version UInt64,
        name String,
        community_id String,
        starts_at DateTime64(3, 'UTC'),
        ends_at DateTime64(3, 'UTC'),
        count_community_stations Bool,
        assignments String,
        assigned_member_ids Array(String),
        assigned_unit_ids Array(String),
        updated_at DateTime64(3, 'UTC'),
        updated_by String
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY id
    SETTINGS {DEDUP}
    """,
]
