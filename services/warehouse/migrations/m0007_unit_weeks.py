"""`member_weeks` again, ordered by unit: the annual assessment reads one unit's year by key.

`member_weeks` is ordered by week first (dashboards read one week), so one unit's year meant
scanning every unit's year. The materialised view copies each inserted row as it is; the
target is a ReplacingMergeTree on the same version, so a duplicated insert still collapses to
one row (a copy, unlike a sum, cannot inflate anything). Rows stored before this migration are
copied once; a re-run copies them again, harmlessly.
"""

STATEMENTS = [
    """
    CREATE TABLE IF NOT EXISTS unit_member_weeks AS member_weeks
    ENGINE = ReplacingMergeTree(version)
    ORDER BY (unit_id, week, member_id, station_id)
    SETTINGS non_replicated_deduplication_window = 10000
    """,
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS unit_member_weeks_mv TO unit_member_weeks
    AS SELECT * FROM member_weeks
    """,
    "INSERT INTO unit_member_weeks SELECT * FROM member_weeks",
]
