"""Revoked bearer tokens, versioned assessment rules, issued records of service."""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    f"""
    CREATE TABLE IF NOT EXISTS revoked_tokens (
        token_id String,
        role LowCardinality(String),
        subject_id String,
        expires_at DateTime64(3, 'UTC'),
        revoked_by String,
        revoked_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree ORDER BY token_id
    TTL toDateTime(expires_at) + INTERVAL 1 DAY
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS assessment_rules (
        version UInt32,
        rules String,
        created_by String,
        created_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree ORDER BY version
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS service_records (
        code String,
        member_id String,
        payload String,
        issued_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree ORDER BY code
    SETTINGS {DEDUP}
    """,
]
