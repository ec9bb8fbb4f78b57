"""The full registry: members' contact, grid and status; grids; station kinds; change history.

New member columns are added with defaults, so rows written before this migration read as an
active member with no phone or grid. `registry_history` is keyed on (kind, id, version): the
write-through copy and the sink's copy of one change collapse into one row.
"""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    "ALTER TABLE members ADD COLUMN IF NOT EXISTS phone Nullable(String)",
    "ALTER TABLE members ADD COLUMN IF NOT EXISTS grid_id Nullable(String)",
    "ALTER TABLE members ADD COLUMN IF NOT EXISTS party_branch Nullable(String)",
    "ALTER TABLE members ADD COLUMN IF NOT EXISTS reported_on Nullable(Date32)",
    "ALTER TABLE members ADD COLUMN IF NOT EXISTS status LowCardinality(String) DEFAULT 'active'",
    f"""
    CREATE TABLE IF NOT EXISTS grids (
        id String,
        community_id String,
        name String,
        level UInt8,
        parent_id Nullable(String),
        version UInt64,
        updated_at DateTime64(3, 'UTC'),
        updated_by String
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS station_kinds (
        id String,
        label String,
        version UInt64,
        updated_at DateTime64(3, 'UTC'),
        updated_by String
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS registry_history (
        event_id String,
        entity_kind LowCardinality(String),
        entity_id String,
        version UInt64,
        operation LowCardinality(String),
        changed_by String,
        changed_at DateTime64(3, 'UTC'),
        fields Array(String),
        before Array(Nullable(String)),
        after Array(Nullable(String))
    ) ENGINE = ReplacingMergeTree
    ORDER BY (entity_kind, entity_id, version)
    SETTINGS {DEDUP}
    """,
]
