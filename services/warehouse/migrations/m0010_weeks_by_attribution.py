"""`member_weeks` and `unit_member_weeks` keyed by whose service a week's total is.

The session agent now keeps a member's weekly totals per week, station *and* the unit,
community and grid the member had when each session began (`services.sessions.week_key`): a
member who moves in the middle of a week has two rows for that week and station, one for each
unit. Keyed only by (week, member, station) the two would replace each other, so both tables are
rebuilt with the attribution in their sorting key, their rows copied, and swapped in
(`EXCHANGE TABLES`: atomic, the names every reader uses stay). Rows written before keep the
single attribution they carried. Not re-runnable past the swap: a failure after it stops the
next run at the `EXCHANGE` (the tables `*_next` no longer exist), for an operator to look at.
"""

_ATTRIBUTED = "unit_id, member_community_id, ifNull(member_grid_id, '')"
_SETTINGS = "SETTINGS non_replicated_deduplication_window = 10000"

STATEMENTS = [
    # Re-created below over the new table: a view would otherwise keep copying into the old one.
    "DROP VIEW IF EXISTS unit_member_weeks_mv",
    "DROP TABLE IF EXISTS member_weeks_next",
    "DROP TABLE IF EXISTS unit_member_weeks_next",
    f"""
    CREATE TABLE member_weeks_next AS member_weeks
    ENGINE = ReplacingMergeTree(version)
    ORDER BY (week, member_id, station_id, {_ATTRIBUTED})
    {_SETTINGS}
    """,
    "INSERT INTO member_weeks_next SELECT * FROM member_weeks",
    f"""
    CREATE TABLE unit_member_weeks_next AS member_weeks
    ENGINE = ReplacingMergeTree(version)
    ORDER BY (unit_id, week, member_id, station_id, member_community_id, ifNull(member_grid_id, ''))
    {_SETTINGS}
    """,
    "INSERT INTO unit_member_weeks_next SELECT * FROM member_weeks",
    "EXCHANGE TABLES member_weeks AND member_weeks_next",
    "EXCHANGE TABLES unit_member_weeks AND unit_member_weeks_next",
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS unit_member_weeks_mv TO unit_member_weeks
    AS SELECT * FROM member_weeks
    """,
    "DROP TABLE IF EXISTS member_weeks_next",
    "DROP TABLE IF EXISTS unit_member_weeks_next",
]
