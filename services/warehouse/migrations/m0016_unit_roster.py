"""The unit's loop (issue 15): units' rosters, communities' report receipts (报到回执), and the
community fields a record of service names (person in charge, handler)."""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    # One row per unit and phone, the latest upload's (present or no longer listed).
    f"""
    CREATE TABLE IF NOT EXISTS unit_roster (
        unit_id String,
        phone String,
        name String,
        party_branch String,
        position Nullable(String),
        present Bool,
        upload_id String,
        set_by String,
        set_at DateTime64(3, 'UTC'),
        version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (unit_id, phone)
    SETTINGS {DEDUP}
    """,
    # One row per member and community confirmed (a repeat confirms nothing new).
    f"""
    CREATE TABLE IF NOT EXISTS report_receipts (
        event_id String,
        member_id String,
        community_id String,
        unit_id String,
        reported_on Nullable(Date32),
        confirmed_by String,
        confirmed_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (member_id, community_id)
    SETTINGS {DEDUP}
    """,
    "ALTER TABLE communities ADD COLUMN IF NOT EXISTS person_in_charge Nullable(String) AFTER phone",
    "ALTER TABLE communities ADD COLUMN IF NOT EXISTS handler Nullable(String)"
    " AFTER person_in_charge",
]
