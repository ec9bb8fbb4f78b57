"""What the reconciliation of raw scans against sessions needs (services.reconcile).

Raw scans carry their place in the log, so a difference is reported per Kafka partition and
can be compared with the session agent's committed offsets; rows written before read -1 (their
place unknown). Sessions name the scans they absorbed besides their check-in and check-out
(double taps, a check-in again at the same station), empty in rows written before.
"""

STATEMENTS = [
    "ALTER TABLE checkins ADD COLUMN IF NOT EXISTS kafka_partition Int32 DEFAULT -1",
    "ALTER TABLE checkins ADD COLUMN IF NOT EXISTS kafka_offset Int64 DEFAULT -1",
    # Parts are written in arrival order, so until merges join them a part's received_at range
    # is narrow: the reconciliation's recent window skips older parts.
    "ALTER TABLE checkins ADD INDEX IF NOT EXISTS idx_received_at received_at TYPE minmax GRANULARITY 4",
    "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS absorbed_event_ids Array(String)",
]
