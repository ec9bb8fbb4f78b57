"""Excused weeks (请假) and standing posts (岗位认领): every request, decision and step, one row
per event (the id keys it, so a re-sent event is one row). The state is read by folding a
request's or a post's events in time order (`services.excused`, `services.posts`)."""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    # Keyed member first: a member's requests, and the weeks figures' lookups of one week's
    # approved members, read a small table either way.
    f"""
    CREATE TABLE IF NOT EXISTS excusals (
        event_id String,
        request_id String,
        action LowCardinality(String),
        member_id String,
        community_id String,
        unit_id String,
        weeks Array(String),
        reason LowCardinality(String),
        note String,
        actor_role LowCardinality(String),
        actor_id String,
        occurred_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (member_id, request_id, event_id)
    SETTINGS {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS post_events (
        event_id String,
        post_id String,
        action LowCardinality(String),
        community_id String,
        grid_id String,
        kind LowCardinality(String),
        title String,
        description String,
        member_id String,
        reason String,
        actor_role LowCardinality(String),
        actor_id String,
        occurred_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (community_id, post_id, event_id)
    SETTINGS {DEDUP}
    """,
]
