"""Assisted and team check-in, the anomaly flags and the WeChat binding (issue 14).

- `checkins`: who made a scan for the member (`assist`: assisted / team, `assisted_by`), the
  activity of a team check-in, and the phone's device id (one device scanning for several
  members is an anomaly flag). Defaults, so rows written before read as a member's own scans.
- `members.team_leader_id`: the member's team leader, set by the community's organizer.
- `wechat_bindings`: a member's WeChat openid for subscription messages (the latest per member;
  an empty openid is an unbinding).
"""

DEDUP = "non_replicated_deduplication_window = 10000"

STATEMENTS = [
    "ALTER TABLE checkins ADD COLUMN IF NOT EXISTS device_id Nullable(String)",
    "ALTER TABLE checkins ADD COLUMN IF NOT EXISTS assist LowCardinality(String) DEFAULT ''",
    "ALTER TABLE checkins ADD COLUMN IF NOT EXISTS assisted_by Nullable(String)",
    "ALTER TABLE checkins ADD COLUMN IF NOT EXISTS activity_id Nullable(String)",
    "ALTER TABLE members ADD COLUMN IF NOT EXISTS team_leader_id Nullable(String)",
    f"""
    CREATE TABLE IF NOT EXISTS wechat_bindings (
        member_id String,
        openid String,
        bound_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(bound_at)
    ORDER BY member_id
    SETTINGS {DEDUP}
    """,
]
