"""Towns (镇/街道) above communities (issue 15), and the check-in heatmap's rollup.

`towns` is a registry table like the others (ReplacingMergeTree on the id, the record's fields
as columns); a community's `town_id` defaults to NULL, so communities entered before towns
read as lying in no town.

`checkin_hours` is the station-by-hour-of-week heatmap's rollup: per ISO week (Asia/Shanghai),
station and local hour of the week, the *set* of check-in scan ids as a `uniqExact` state. A
materialised view over `checkins` sums every inserted row, duplicates included, before
ReplacingMergeTree merges them away (docs/conventions.md); a set of ids does not grow when the
same scan is inserted twice, so the rollup stays exact under re-delivery and replays. Rows
stored before this migration are rolled up once by the INSERT below; a re-run adds the same ids
to the same sets, harmlessly.
"""

DEDUP = "non_replicated_deduplication_window = 10000"

# The scan's local week and hour of the week (Monday 00:00 = 0 .. Sunday 23:00 = 167).
_ROLLUP = """
    SELECT
        concat(toString(toISOYear(toTimeZone(scanned_at, 'Asia/Shanghai'))), '-W',
               leftPad(toString(toISOWeek(toTimeZone(scanned_at, 'Asia/Shanghai'))), 2, '0'))
            AS week,
        station_id,
        station_community_id,
        toUInt8((toDayOfWeek(toTimeZone(scanned_at, 'Asia/Shanghai')) - 1) * 24
                + toHour(toTimeZone(scanned_at, 'Asia/Shanghai'))) AS hour_of_week,
        uniqExactState(event_id) AS scans
    FROM checkins
    WHERE action = 'in'
    GROUP BY week, station_id, station_community_id, hour_of_week
"""

STATEMENTS = [
    f"""
    CREATE TABLE IF NOT EXISTS towns (
        id String,
        name String,
        version UInt64,
        updated_at DateTime64(3, 'UTC'),
        updated_by String
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id SETTINGS {DEDUP}
    """,
    "ALTER TABLE communities ADD COLUMN IF NOT EXISTS town_id Nullable(String)",
    """
    CREATE TABLE IF NOT EXISTS checkin_hours (
        week LowCardinality(String),
        station_id String,
        station_community_id String,
        hour_of_week UInt8,
        scans AggregateFunction(uniqExact, String)
    ) ENGINE = AggregatingMergeTree
    ORDER BY (week, station_community_id, station_id, hour_of_week)
    """,
    f"CREATE MATERIALIZED VIEW IF NOT EXISTS checkin_hours_mv TO checkin_hours AS {_ROLLUP}",
    f"INSERT INTO checkin_hours {_ROLLUP}",
]
