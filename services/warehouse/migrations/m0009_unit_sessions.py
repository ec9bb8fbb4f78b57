"""`sessions` again, by unit and local year: the assessment reads one unit's calendar year by key.

The assessment counts hours and sessions by the calendar year of the session's local start date
(`services.counting`), which the weekly rows (`unit_member_weeks`, ISO weeks) cannot give at the
year's edges. The materialised view copies each inserted session revision as it is; the target
is a ReplacingMergeTree on the revision keyed like `sessions` within the unit, so a duplicated
insert collapses to one row (a copy, unlike a sum, cannot inflate anything). A session's unit
and start come from its opening scan and never change between revisions, so partitioning by the
local year keeps every revision of a session in one partition (FINAL replaces within one).
Rows stored before this migration are copied once; a re-run copies them again, harmlessly.
"""

_COLUMNS = (
    "unit_id, member_id, session_id, revision, member_community_id, station_id, "
    "station_community_id, start, credited_seconds, status, flags, voided"
)

STATEMENTS = [
    """
    CREATE TABLE IF NOT EXISTS unit_sessions (
        unit_id String,
        member_id String,
        session_id String,
        revision UInt32,
        member_community_id String,
        station_id String,
        station_community_id String,
        start DateTime64(3, 'UTC'),
        credited_seconds UInt32,
        status LowCardinality(String),
        flags Array(String),
        voided UInt8
    ) ENGINE = ReplacingMergeTree(revision)
    PARTITION BY toYear(start, 'Asia/Shanghai')
    ORDER BY (unit_id, member_id, session_id)
    SETTINGS non_replicated_deduplication_window = 10000
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS unit_sessions_mv TO unit_sessions
    AS SELECT {_COLUMNS} FROM sessions
    """,
    f"INSERT INTO unit_sessions ({_COLUMNS}) SELECT {_COLUMNS} FROM sessions",
]
