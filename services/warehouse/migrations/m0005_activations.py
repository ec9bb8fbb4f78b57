"""Phone activation codes (by HMAC, never the code itself): issued, then redeemed once.

ReplacingMergeTree on the revision: a redeemed code (revision 2) replaces its issue (revision 1)
when read with FINAL, and a row written twice (write-through and sink) is one row.
"""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    f"""
    CREATE TABLE IF NOT EXISTS activations (
        code_hash String,
        revision UInt32,
        member_id String,
        community_id String,
        issued_by String,
        issued_at DateTime64(3, 'UTC'),
        expires_at DateTime64(3, 'UTC'),
        redeemed_at Nullable(DateTime64(3, 'UTC'))
    ) ENGINE = ReplacingMergeTree(revision)
    ORDER BY code_hash
    SETTINGS {DEDUP}
    """,
]
