-- Every migration rendered for the ClickHouse cluster 'volunteer'
-- (python -m services.warehouse.cluster; services/warehouse/cluster.py).

-- the migrate step's bookkeeping
CREATE TABLE IF NOT EXISTS schema_migrations_local ON CLUSTER 'volunteer' ( number UInt32, name String, applied_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY number;
CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER 'volunteer' AS schema_migrations_local ENGINE = Distributed('volunteer', currentDatabase(), 'schema_migrations_local', cityHash64(number));

-- m0001_initial
CREATE TABLE IF NOT EXISTS units_local ON CLUSTER 'volunteer' ( id String, name String, version UInt64, updated_at DateTime64(3, 'UTC'), updated_by String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS units ON CLUSTER 'volunteer' AS units_local ENGINE = Distributed('volunteer', currentDatabase(), 'units_local', cityHash64(id));
CREATE TABLE IF NOT EXISTS communities_local ON CLUSTER 'volunteer' ( id String, name String, version UInt64, updated_at DateTime64(3, 'UTC'), updated_by String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS communities ON CLUSTER 'volunteer' AS communities_local ENGINE = Distributed('volunteer', currentDatabase(), 'communities_local', cityHash64(id));
CREATE TABLE IF NOT EXISTS stations_local ON CLUSTER 'volunteer' ( id String, community_id String, name String, kind LowCardinality(String), lat Nullable(Float64), lon Nullable(Float64), version UInt64, updated_at DateTime64(3, 'UTC'), updated_by String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS stations ON CLUSTER 'volunteer' AS stations_local ENGINE = Distributed('volunteer', currentDatabase(), 'stations_local', cityHash64(id));
CREATE TABLE IF NOT EXISTS members_local ON CLUSTER 'volunteer' ( id String, name String, unit_id String, community_id String, version UInt64, updated_at DateTime64(3, 'UTC'), updated_by String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS members ON CLUSTER 'volunteer' AS members_local ENGINE = Distributed('volunteer', currentDatabase(), 'members_local', cityHash64(id));
CREATE TABLE IF NOT EXISTS checkins_local ON CLUSTER 'volunteer' ( event_id String, member_id String, station_id String, station_community_id String, unit_id String, member_community_id String, action LowCardinality(String), client_event_id String, scanned_at DateTime64(3, 'UTC'), received_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') PARTITION BY toYYYYMM(scanned_at) ORDER BY (member_id, event_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS checkins ON CLUSTER 'volunteer' AS checkins_local ENGINE = Distributed('volunteer', currentDatabase(), 'checkins_local', cityHash64((member_id, event_id)));
CREATE TABLE IF NOT EXISTS sessions_local ON CLUSTER 'volunteer' ( session_id String, revision UInt32, member_id String, unit_id String, member_community_id String, station_id String, station_community_id String, start DateTime64(3, 'UTC'), end Nullable(DateTime64(3, 'UTC')), credited_seconds UInt32, status LowCardinality(String), flags Array(String), checkin_event_id Nullable(String), checkout_event_id Nullable(String) ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', revision) ORDER BY (member_id, session_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS sessions ON CLUSTER 'volunteer' AS sessions_local ENGINE = Distributed('volunteer', currentDatabase(), 'sessions_local', cityHash64((member_id, session_id)));

-- m0002_registry
ALTER TABLE members_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS phone Nullable(String);
ALTER TABLE members ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS phone Nullable(String);
ALTER TABLE members_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS grid_id Nullable(String);
ALTER TABLE members ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS grid_id Nullable(String);
ALTER TABLE members_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS party_branch Nullable(String);
ALTER TABLE members ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS party_branch Nullable(String);
ALTER TABLE members_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS reported_on Nullable(Date32);
ALTER TABLE members ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS reported_on Nullable(Date32);
ALTER TABLE members_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS status LowCardinality(String) DEFAULT 'active';
ALTER TABLE members ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS status LowCardinality(String) DEFAULT 'active';
CREATE TABLE IF NOT EXISTS grids_local ON CLUSTER 'volunteer' ( id String, community_id String, name String, level UInt8, parent_id Nullable(String), version UInt64, updated_at DateTime64(3, 'UTC'), updated_by String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS grids ON CLUSTER 'volunteer' AS grids_local ENGINE = Distributed('volunteer', currentDatabase(), 'grids_local', cityHash64(id));
CREATE TABLE IF NOT EXISTS station_kinds_local ON CLUSTER 'volunteer' ( id String, label String, version UInt64, updated_at DateTime64(3, 'UTC'), updated_by String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS station_kinds ON CLUSTER 'volunteer' AS station_kinds_local ENGINE = Distributed('volunteer', currentDatabase(), 'station_kinds_local', cityHash64(id));
CREATE TABLE IF NOT EXISTS registry_history_local ON CLUSTER 'volunteer' ( event_id String, entity_kind LowCardinality(String), entity_id String, version UInt64, operation LowCardinality(String), changed_by String, changed_at DateTime64(3, 'UTC'), fields Array(String), before Array(Nullable(String)), after Array(Nullable(String)) ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY (entity_kind, entity_id, version) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS registry_history ON CLUSTER 'volunteer' AS registry_history_local ENGINE = Distributed('volunteer', currentDatabase(), 'registry_history_local', cityHash64((entity_kind, entity_id, version)));

-- m0003_sessions_weekly
ALTER TABLE sessions_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS member_grid_id Nullable(String);
ALTER TABLE sessions ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS member_grid_id Nullable(String);
ALTER TABLE sessions_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS voided UInt8 DEFAULT 0;
ALTER TABLE sessions ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS voided UInt8 DEFAULT 0;
ALTER TABLE sessions_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS counted UInt8 DEFAULT status NOT IN ('open', 'rejected') AND NOT has(flags, 'checkout_without_checkin');
ALTER TABLE sessions ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS counted UInt8 DEFAULT status NOT IN ('open', 'rejected') AND NOT has(flags, 'checkout_without_checkin');
ALTER TABLE sessions_local ON CLUSTER 'volunteer' ADD INDEX IF NOT EXISTS idx_session_id session_id TYPE bloom_filter GRANULARITY 4;
ALTER TABLE sessions_local ON CLUSTER 'volunteer' ADD INDEX IF NOT EXISTS idx_station_community station_community_id TYPE bloom_filter GRANULARITY 4;
CREATE TABLE IF NOT EXISTS session_reviews_local ON CLUSTER 'volunteer' ( review_id String, session_id String, member_id String, station_community_id String, action LowCardinality(String), credited_seconds Nullable(UInt32), reason String, reviewer_role LowCardinality(String), reviewer_id String, reviewed_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY (session_id, review_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS session_reviews ON CLUSTER 'volunteer' AS session_reviews_local ENGINE = Distributed('volunteer', currentDatabase(), 'session_reviews_local', cityHash64((session_id, review_id)));
CREATE TABLE IF NOT EXISTS member_weeks_local ON CLUSTER 'volunteer' ( week LowCardinality(String), member_id String, station_id String, station_community_id String, member_community_id String, member_grid_id Nullable(String), unit_id String, sessions UInt32, credited_seconds UInt64, version UInt64, as_of DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY (week, member_id, station_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS member_weeks ON CLUSTER 'volunteer' AS member_weeks_local ENGINE = Distributed('volunteer', currentDatabase(), 'member_weeks_local', cityHash64((week, member_id, station_id)));

-- m0004_engagement
CREATE TABLE IF NOT EXISTS feedback_local ON CLUSTER 'volunteer' ( feedback_id String, version UInt64, kind LowCardinality(String), member_id String, unit_id String, community_id String, session_id Nullable(String), period String, period_start Date, period_end Date, rating Nullable(UInt8), grade Nullable(String), comment String, author_role LowCardinality(String), author_id String, client_event_id Nullable(String), recorded_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY feedback_id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS feedback ON CLUSTER 'volunteer' AS feedback_local ENGINE = Distributed('volunteer', currentDatabase(), 'feedback_local', cityHash64(feedback_id));
CREATE TABLE IF NOT EXISTS wishes_local ON CLUSTER 'volunteer' ( wish_id String, revision UInt32, status LowCardinality(String), community_id String, title String, description String, resident_name String, resident_contact String, assignee_kind Nullable(String), assignee_id Nullable(String), project_id Nullable(String), resource_id Nullable(String), evidence_session_id Nullable(String), fulfilled_by_member_id Nullable(String), fulfilled_by_unit_id Nullable(String), rating Nullable(UInt8), rating_comment String, created_at DateTime64(3, 'UTC'), updated_at DateTime64(3, 'UTC'), dispatched_at Nullable(DateTime64(3, 'UTC')), accepted_at Nullable(DateTime64(3, 'UTC')), done_at Nullable(DateTime64(3, 'UTC')), confirmed_at Nullable(DateTime64(3, 'UTC')), last_event_id String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', revision) ORDER BY wish_id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS wishes ON CLUSTER 'volunteer' AS wishes_local ENGINE = Distributed('volunteer', currentDatabase(), 'wishes_local', cityHash64(wish_id));
CREATE TABLE IF NOT EXISTS resources_local ON CLUSTER 'volunteer' ( resource_id String, revision UInt32, status LowCardinality(String), unit_id String, community_id Nullable(String), title String, description String, project_id Nullable(String), wish_id Nullable(String), created_at DateTime64(3, 'UTC'), updated_at DateTime64(3, 'UTC'), last_event_id String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', revision) ORDER BY resource_id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS resources ON CLUSTER 'volunteer' AS resources_local ENGINE = Distributed('volunteer', currentDatabase(), 'resources_local', cityHash64(resource_id));
CREATE TABLE IF NOT EXISTS list_rejections_local ON CLUSTER 'volunteer' ( event_id String, command_event_id String, item_kind LowCardinality(String), item_id String, action LowCardinality(String), actor_role LowCardinality(String), actor_id String, code LowCardinality(String), reason String, occurred_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY (item_id, event_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS list_rejections ON CLUSTER 'volunteer' AS list_rejections_local ENGINE = Distributed('volunteer', currentDatabase(), 'list_rejections_local', cityHash64((item_id, event_id)));
CREATE TABLE IF NOT EXISTS list_transitions_local ON CLUSTER 'volunteer' ( event_id String, command_event_id String, item_kind LowCardinality(String), item_id String, action LowCardinality(String), actor_role LowCardinality(String), actor_id String, revision UInt32, status LowCardinality(String), reason Nullable(String), occurred_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY (item_id, revision, event_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS list_transitions ON CLUSTER 'volunteer' AS list_transitions_local ENGINE = Distributed('volunteer', currentDatabase(), 'list_transitions_local', cityHash64((item_id, revision, event_id)));
CREATE TABLE IF NOT EXISTS campaigns_local ON CLUSTER 'volunteer' ( id String, version UInt64, name String, community_id String, starts_at DateTime64(3, 'UTC'), ends_at DateTime64(3, 'UTC'), count_community_stations Bool, assignments String, assigned_member_ids Array(String), assigned_unit_ids Array(String), updated_at DateTime64(3, 'UTC'), updated_by String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS campaigns ON CLUSTER 'volunteer' AS campaigns_local ENGINE = Distributed('volunteer', currentDatabase(), 'campaigns_local', cityHash64(id));

-- m0005_activations
CREATE TABLE IF NOT EXISTS activations_local ON CLUSTER 'volunteer' ( code_hash String, revision UInt32, member_id String, community_id String, issued_by String, issued_at DateTime64(3, 'UTC'), expires_at DateTime64(3, 'UTC'), redeemed_at Nullable(DateTime64(3, 'UTC')) ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', revision) ORDER BY code_hash SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS activations ON CLUSTER 'volunteer' AS activations_local ENGINE = Distributed('volunteer', currentDatabase(), 'activations_local', cityHash64(code_hash));

-- m0006_access
CREATE TABLE IF NOT EXISTS revoked_tokens_local ON CLUSTER 'volunteer' ( token_id String, role LowCardinality(String), subject_id String, expires_at DateTime64(3, 'UTC'), revoked_by String, revoked_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY token_id TTL toDateTime(expires_at) + INTERVAL 1 DAY SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS revoked_tokens ON CLUSTER 'volunteer' AS revoked_tokens_local ENGINE = Distributed('volunteer', currentDatabase(), 'revoked_tokens_local', cityHash64(token_id));
CREATE TABLE IF NOT EXISTS assessment_rules_local ON CLUSTER 'volunteer' ( version UInt32, rules String, created_by String, created_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY version SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS assessment_rules ON CLUSTER 'volunteer' AS assessment_rules_local ENGINE = Distributed('volunteer', currentDatabase(), 'assessment_rules_local', cityHash64(version));
CREATE TABLE IF NOT EXISTS service_records_local ON CLUSTER 'volunteer' ( code String, member_id String, payload String, issued_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY code SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS service_records ON CLUSTER 'volunteer' AS service_records_local ENGINE = Distributed('volunteer', currentDatabase(), 'service_records_local', cityHash64(code));

-- m0007_unit_weeks
CREATE TABLE IF NOT EXISTS unit_member_weeks_local ON CLUSTER 'volunteer' AS member_weeks_local ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY (unit_id, week, member_id, station_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS unit_member_weeks ON CLUSTER 'volunteer' AS unit_member_weeks_local ENGINE = Distributed('volunteer', currentDatabase(), 'unit_member_weeks_local', cityHash64((unit_id, week, member_id, station_id)));
CREATE MATERIALIZED VIEW IF NOT EXISTS unit_member_weeks_mv ON CLUSTER 'volunteer' TO unit_member_weeks_local AS SELECT * FROM member_weeks_local;
INSERT INTO unit_member_weeks SELECT * FROM member_weeks;

-- m0008_scan_accounting
ALTER TABLE checkins_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS kafka_partition Int32 DEFAULT -1;
ALTER TABLE checkins ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS kafka_partition Int32 DEFAULT -1;
ALTER TABLE checkins_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS kafka_offset Int64 DEFAULT -1;
ALTER TABLE checkins ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS kafka_offset Int64 DEFAULT -1;
ALTER TABLE checkins_local ON CLUSTER 'volunteer' ADD INDEX IF NOT EXISTS idx_received_at received_at TYPE minmax GRANULARITY 4;
ALTER TABLE sessions_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS absorbed_event_ids Array(String);
ALTER TABLE sessions ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS absorbed_event_ids Array(String);

-- m0009_unit_sessions
CREATE TABLE IF NOT EXISTS unit_sessions_local ON CLUSTER 'volunteer' ( unit_id String, member_id String, session_id String, revision UInt32, member_community_id String, station_id String, station_community_id String, start DateTime64(3, 'UTC'), credited_seconds UInt32, status LowCardinality(String), flags Array(String), voided UInt8 ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', revision) PARTITION BY toYear(start, 'Asia/Shanghai') ORDER BY (unit_id, member_id, session_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS unit_sessions ON CLUSTER 'volunteer' AS unit_sessions_local ENGINE = Distributed('volunteer', currentDatabase(), 'unit_sessions_local', cityHash64((unit_id, member_id, session_id)));
CREATE MATERIALIZED VIEW IF NOT EXISTS unit_sessions_mv ON CLUSTER 'volunteer' TO unit_sessions_local AS SELECT unit_id, member_id, session_id, revision, member_community_id, station_id, station_community_id, start, credited_seconds, status, flags, voided FROM sessions_local;
INSERT INTO unit_sessions (unit_id, member_id, session_id, revision, member_community_id, station_id, station_community_id, start, credited_seconds, status, flags, voided) SELECT unit_id, member_id, session_id, revision, member_community_id, station_id, station_community_id, start, credited_seconds, status, flags, voided FROM sessions;

-- m0010_weeks_by_attribution
DROP VIEW IF EXISTS unit_member_weeks_mv ON CLUSTER 'volunteer' SYNC;
DROP TABLE IF EXISTS member_weeks_next ON CLUSTER 'volunteer' SYNC;
DROP TABLE IF EXISTS member_weeks_next_local ON CLUSTER 'volunteer' SYNC;
DROP TABLE IF EXISTS unit_member_weeks_next ON CLUSTER 'volunteer' SYNC;
DROP TABLE IF EXISTS unit_member_weeks_next_local ON CLUSTER 'volunteer' SYNC;
CREATE TABLE member_weeks_next_local ON CLUSTER 'volunteer' AS member_weeks_local ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY (week, member_id, station_id, unit_id, member_community_id, ifNull(member_grid_id, '')) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE member_weeks_next ON CLUSTER 'volunteer' AS member_weeks_next_local ENGINE = Distributed('volunteer', currentDatabase(), 'member_weeks_next_local', cityHash64((week, member_id, station_id, unit_id, member_community_id, ifNull(member_grid_id, ''))));
INSERT INTO member_weeks_next SELECT * FROM member_weeks;
CREATE TABLE unit_member_weeks_next_local ON CLUSTER 'volunteer' AS member_weeks_local ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY (unit_id, week, member_id, station_id, member_community_id, ifNull(member_grid_id, '')) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE unit_member_weeks_next ON CLUSTER 'volunteer' AS unit_member_weeks_next_local ENGINE = Distributed('volunteer', currentDatabase(), 'unit_member_weeks_next_local', cityHash64((unit_id, week, member_id, station_id, member_community_id, ifNull(member_grid_id, ''))));
INSERT INTO unit_member_weeks_next SELECT * FROM member_weeks;
EXCHANGE TABLES member_weeks_local AND member_weeks_next_local ON CLUSTER 'volunteer';
EXCHANGE TABLES unit_member_weeks_local AND unit_member_weeks_next_local ON CLUSTER 'volunteer';
CREATE MATERIALIZED VIEW IF NOT EXISTS unit_member_weeks_mv ON CLUSTER 'volunteer' TO unit_member_weeks_local AS SELECT * FROM member_weeks_local;
DROP TABLE IF EXISTS member_weeks_next ON CLUSTER 'volunteer' SYNC;
DROP TABLE IF EXISTS member_weeks_next_local ON CLUSTER 'volunteer' SYNC;
DROP TABLE IF EXISTS unit_member_weeks_next ON CLUSTER 'volunteer' SYNC;
DROP TABLE IF EXISTS unit_member_weeks_next_local ON CLUSTER 'volunteer' SYNC;

-- m0011_notifications
CREATE TABLE IF NOT EXISTS notifications_local ON CLUSTER 'volunteer' ( notification_id String, kind LowCardinality(String), recipient_kind LowCardinality(String), recipient_id String, community_id String, week String, title String, body String, created_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY (recipient_id, notification_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS notifications ON CLUSTER 'volunteer' AS notifications_local ENGINE = Distributed('volunteer', currentDatabase(), 'notifications_local', cityHash64((recipient_id, notification_id)));
CREATE TABLE IF NOT EXISTS notification_deliveries_local ON CLUSTER 'volunteer' ( notification_id String, recipient_id String, channel LowCardinality(String), status LowCardinality(String), attempts UInt8, error String, at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', at) ORDER BY (notification_id, channel) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS notification_deliveries ON CLUSTER 'volunteer' AS notification_deliveries_local ENGINE = Distributed('volunteer', currentDatabase(), 'notification_deliveries_local', cityHash64((notification_id, channel)));
CREATE TABLE IF NOT EXISTS reminder_preferences_local ON CLUSTER 'volunteer' ( member_id String, kind LowCardinality(String), enabled Bool, set_by String, set_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', set_at) ORDER BY (member_id, kind) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS reminder_preferences ON CLUSTER 'volunteer' AS reminder_preferences_local ENGINE = Distributed('volunteer', currentDatabase(), 'reminder_preferences_local', cityHash64((member_id, kind)));

-- m0012_community_phone
ALTER TABLE communities_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS phone Nullable(String) AFTER name;
ALTER TABLE communities ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS phone Nullable(String) AFTER name;

-- m0013_station_presence
ALTER TABLE stations_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS accepts_poster Bool DEFAULT true;
ALTER TABLE stations ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS accepts_poster Bool DEFAULT true;
ALTER TABLE stations_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS backdated_poster LowCardinality(String) DEFAULT 'flag';
ALTER TABLE stations ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS backdated_poster LowCardinality(String) DEFAULT 'flag';
ALTER TABLE stations_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS screen_key_generation UInt32 DEFAULT 0;
ALTER TABLE stations ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS screen_key_generation UInt32 DEFAULT 0;

-- m0014_access_log
CREATE TABLE IF NOT EXISTS access_log_local ON CLUSTER 'volunteer' ( event_id String, kind LowCardinality(String), actor_role LowCardinality(String), actor_id String, member_ids Array(String), route String, detail String, at DateTime64(3, 'UTC'), INDEX idx_member_ids member_ids TYPE bloom_filter GRANULARITY 4 ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') PARTITION BY toYear(at) ORDER BY (at, event_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS access_log ON CLUSTER 'volunteer' AS access_log_local ENGINE = Distributed('volunteer', currentDatabase(), 'access_log_local', cityHash64((at, event_id)));
CREATE TABLE IF NOT EXISTS retention_applied_local ON CLUSTER 'volunteer' ( table_name String, years UInt32, applied_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', applied_at) ORDER BY table_name;
CREATE TABLE IF NOT EXISTS retention_applied ON CLUSTER 'volunteer' AS retention_applied_local ENGINE = Distributed('volunteer', currentDatabase(), 'retention_applied_local', cityHash64(table_name));

-- m0015_assisted
ALTER TABLE checkins_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS device_id Nullable(String);
ALTER TABLE checkins ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS device_id Nullable(String);
ALTER TABLE checkins_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS assist LowCardinality(String) DEFAULT '';
ALTER TABLE checkins ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS assist LowCardinality(String) DEFAULT '';
ALTER TABLE checkins_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS assisted_by Nullable(String);
ALTER TABLE checkins ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS assisted_by Nullable(String);
ALTER TABLE checkins_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS activity_id Nullable(String);
ALTER TABLE checkins ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS activity_id Nullable(String);
ALTER TABLE members_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS team_leader_id Nullable(String);
ALTER TABLE members ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS team_leader_id Nullable(String);
CREATE TABLE IF NOT EXISTS wechat_bindings_local ON CLUSTER 'volunteer' ( member_id String, openid String, bound_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', bound_at) ORDER BY member_id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS wechat_bindings ON CLUSTER 'volunteer' AS wechat_bindings_local ENGINE = Distributed('volunteer', currentDatabase(), 'wechat_bindings_local', cityHash64(member_id));

-- m0016_unit_roster
CREATE TABLE IF NOT EXISTS unit_roster_local ON CLUSTER 'volunteer' ( unit_id String, phone String, name String, party_branch String, position Nullable(String), present Bool, upload_id String, set_by String, set_at DateTime64(3, 'UTC'), version UInt64 ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY (unit_id, phone) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS unit_roster ON CLUSTER 'volunteer' AS unit_roster_local ENGINE = Distributed('volunteer', currentDatabase(), 'unit_roster_local', cityHash64((unit_id, phone)));
CREATE TABLE IF NOT EXISTS report_receipts_local ON CLUSTER 'volunteer' ( event_id String, member_id String, community_id String, unit_id String, reported_on Nullable(Date32), confirmed_by String, confirmed_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY (member_id, community_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS report_receipts ON CLUSTER 'volunteer' AS report_receipts_local ENGINE = Distributed('volunteer', currentDatabase(), 'report_receipts_local', cityHash64((member_id, community_id)));
ALTER TABLE communities_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS person_in_charge Nullable(String) AFTER phone;
ALTER TABLE communities ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS person_in_charge Nullable(String) AFTER phone;
ALTER TABLE communities_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS handler Nullable(String) AFTER person_in_charge;
ALTER TABLE communities ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS handler Nullable(String) AFTER person_in_charge;

-- m0017_activities
CREATE TABLE IF NOT EXISTS activities_local ON CLUSTER 'volunteer' ( community_id String, title String, description String, station_id Nullable(String), grid_id Nullable(String), starts_at DateTime64(3, 'UTC'), ends_at DateTime64(3, 'UTC'), capacity UInt32, signup_deadline DateTime64(3, 'UTC'), cancel_deadline DateTime64(3, 'UTC'), unit_ids Array(String), rule_id Nullable(String), activity_id String, revision UInt32, status LowCardinality(String), placed UInt32, waiting UInt32, created_by String, created_at DateTime64(3, 'UTC'), updated_at DateTime64(3, 'UTC'), last_event_id String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', revision) ORDER BY (community_id, activity_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS activities ON CLUSTER 'volunteer' AS activities_local ENGINE = Distributed('volunteer', currentDatabase(), 'activities_local', cityHash64((community_id, activity_id)));
CREATE TABLE IF NOT EXISTS activity_signups_local ON CLUSTER 'volunteer' ( activity_id String, member_id String, unit_id String, community_id String, version UInt32, status LowCardinality(String), seq UInt32, signed_up_at DateTime64(3, 'UTC'), updated_at DateTime64(3, 'UTC'), last_event_id String, signup_event_id String, command_event_id String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY (activity_id, member_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS activity_signups ON CLUSTER 'volunteer' AS activity_signups_local ENGINE = Distributed('volunteer', currentDatabase(), 'activity_signups_local', cityHash64((activity_id, member_id)));
CREATE TABLE IF NOT EXISTS activity_rejections_local ON CLUSTER 'volunteer' ( event_id String, command_event_id String, activity_id String, action LowCardinality(String), actor_role LowCardinality(String), actor_id String, member_id Nullable(String), code LowCardinality(String), reason String, occurred_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY (activity_id, event_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS activity_rejections ON CLUSTER 'volunteer' AS activity_rejections_local ENGINE = Distributed('volunteer', currentDatabase(), 'activity_rejections_local', cityHash64((activity_id, event_id)));

-- m0018_excused
CREATE TABLE IF NOT EXISTS excusals_local ON CLUSTER 'volunteer' ( event_id String, request_id String, action LowCardinality(String), member_id String, community_id String, unit_id String, weeks Array(String), reason LowCardinality(String), note String, actor_role LowCardinality(String), actor_id String, occurred_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY (member_id, request_id, event_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS excusals ON CLUSTER 'volunteer' AS excusals_local ENGINE = Distributed('volunteer', currentDatabase(), 'excusals_local', cityHash64((member_id, request_id, event_id)));
CREATE TABLE IF NOT EXISTS post_events_local ON CLUSTER 'volunteer' ( event_id String, post_id String, action LowCardinality(String), community_id String, grid_id String, kind LowCardinality(String), title String, description String, member_id String, reason String, actor_role LowCardinality(String), actor_id String, occurred_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY (community_id, post_id, event_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS post_events ON CLUSTER 'volunteer' AS post_events_local ENGINE = Distributed('volunteer', currentDatabase(), 'post_events_local', cityHash64((community_id, post_id, event_id)));

-- m0019_towns
CREATE TABLE IF NOT EXISTS towns_local ON CLUSTER 'volunteer' ( id String, name String, version UInt64, updated_at DateTime64(3, 'UTC'), updated_by String ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY id SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS towns ON CLUSTER 'volunteer' AS towns_local ENGINE = Distributed('volunteer', currentDatabase(), 'towns_local', cityHash64(id));
ALTER TABLE communities_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS town_id Nullable(String);
ALTER TABLE communities ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS town_id Nullable(String);
CREATE TABLE IF NOT EXISTS checkin_hours_local ON CLUSTER 'volunteer' ( week LowCardinality(String), station_id String, station_community_id String, hour_of_week UInt8, scans AggregateFunction(uniqExact, String) ) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY (week, station_community_id, station_id, hour_of_week);
CREATE TABLE IF NOT EXISTS checkin_hours ON CLUSTER 'volunteer' AS checkin_hours_local ENGINE = Distributed('volunteer', currentDatabase(), 'checkin_hours_local', cityHash64((week, station_community_id, station_id, hour_of_week)));
CREATE MATERIALIZED VIEW IF NOT EXISTS checkin_hours_mv ON CLUSTER 'volunteer' TO checkin_hours_local AS SELECT concat(toString(toISOYear(toTimeZone(scanned_at, 'Asia/Shanghai'))), '-W', leftPad(toString(toISOWeek(toTimeZone(scanned_at, 'Asia/Shanghai'))), 2, '0')) AS week, station_id, station_community_id, toUInt8((toDayOfWeek(toTimeZone(scanned_at, 'Asia/Shanghai')) - 1) * 24 + toHour(toTimeZone(scanned_at, 'Asia/Shanghai'))) AS hour_of_week, uniqExactState(event_id) AS scans FROM checkins_local WHERE action = 'in' GROUP BY week, station_id, station_community_id, hour_of_week;
INSERT INTO checkin_hours SELECT concat(toString(toISOYear(toTimeZone(scanned_at, 'Asia/Shanghai'))), '-W', leftPad(toString(toISOWeek(toTimeZone(scanned_at, 'Asia/Shanghai'))), 2, '0')) AS week, station_id, station_community_id, toUInt8((toDayOfWeek(toTimeZone(scanned_at, 'Asia/Shanghai')) - 1) * 24 + toHour(toTimeZone(scanned_at, 'Asia/Shanghai'))) AS hour_of_week, uniqExactState(event_id) AS scans FROM checkins WHERE action = 'in' GROUP BY week, station_id, station_community_id, hour_of_week;

-- m0020_volunteer_no
ALTER TABLE members_local ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS volunteer_no Nullable(String);
ALTER TABLE members ON CLUSTER 'volunteer' ADD COLUMN IF NOT EXISTS volunteer_no Nullable(String);

-- m0021_slot_weeks
CREATE TABLE IF NOT EXISTS slot_weeks_local ON CLUSTER 'volunteer' ( week LowCardinality(String), member_id String, placed UInt32, attended UInt32, no_shows UInt32, event_id String, decided_at DateTime64(3, 'UTC') ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', decided_at) ORDER BY (week, member_id) SETTINGS replicated_deduplication_window = 10000;
CREATE TABLE IF NOT EXISTS slot_weeks ON CLUSTER 'volunteer' AS slot_weeks_local ENGINE = Distributed('volunteer', currentDatabase(), 'slot_weeks_local', cityHash64((week, member_id)));
