"""The guard in production: every raw scan the session agent committed is named by a session.

The session agent acknowledges a scan (so its offset gets committed) once the scan's effect is
in its state and the session records it produced are in Kafka; the sink then writes the raw
scan to `checkins` and the records to `sessions`. Every scan the pairing rules apply is named
by the latest, non-voided revision of exactly the sessions it made or joined (check-in,
check-out, or `absorbed_event_ids`: double taps, a check-in again at the same station). So,
per Kafka partition and local day, the raw scans that the agent committed past must all be
named by sessions; one that is not was skipped by the worker (the loss of issue 18: an offset
committed past a message never processed), refused to the dead letters (which are not in
ClickHouse), or its session never reached the warehouse.

When a scan is due: the agent's committed offsets on `checkins` are read every run; a scan is
checked only once a snapshot taken at least RECONCILE_SETTLE_S ago had passed its offset, so
its session records had that long to reach ClickHouse. A worker that is behind (a backlog, a
restart) is therefore not an alarm; its lag has its own metric (`volunteer_agent_lag`). Rows
written before raw scans carried their offset (partition -1) are due on their receipt time;
sessions recorded before then did not name double taps, so partition -1 is reported and logged,
but the alert rule (infra/prometheus/rules.yml) does not page on it.

Runs where the sink runs (in the API process in the embedded mode, beside the sink; in every
standalone sink otherwise), every RECONCILE_INTERVAL_S; results on /metrics
(`volunteer_unaccounted_scans{partition}`, `volunteer_reconciled_scans{partition}`,
`volunteer_reconcile_runs_total{result}`), in the logs (each newly unaccounted scan, naming
the member and the scan), and for the admin at `GET /v1/admin/reconciliation`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from services import metrics
from services.events import utcnow
from services.settings import Settings
from services.topics import CHECKINS, STREAMS_APP_ID
from services.warehouse.client import Warehouse

log = logging.getLogger(__name__)

# The session agent's consumer group: the faust app id, with the prefix.
SESSION_AGENT_GROUP = STREAMS_APP_ID
# Scans are named by sessions that began at most this long before them: a session is closed by
# its check-out or, forgotten, at the end of its local day plus a grace of at most a day.
SESSION_SPAN = timedelta(days=2)

# Per partition and local day of the scan (Asia/Shanghai): the raw scans due (distinct event
# ids received in the window whose offset the agent's committed offset had passed, given as
# `bounds`: bounds[p + 1] is partition p's), how many of them the live sessions name, and the
# first `limit` that none names. `member_id IN` keeps the sessions read to the members
# concerned (the table's key starts with the member). One thread: a background check should
# not take the cores the API (beside it in the embedded mode) serves check-ins with.
ACCOUNT_SQL = """
WITH
    raw AS (
        SELECT
            event_id,
            any(member_id) AS member,
            max(kafka_partition) AS part,
            min(kafka_offset) AS log_offset,
            min(scanned_at) AS scan_time
        FROM checkins
        WHERE scanned_at >= %(scanned_from)s
          AND received_at >= %(since)s AND received_at < %(settled)s
        GROUP BY event_id
        HAVING log_offset < 0
            OR log_offset < arrayElement(CAST(%(bounds)s AS Array(Int64)), part + 1)
    ),
    named AS (
        SELECT arrayJoin(arrayConcat(
            arrayFilter(x -> x != '', [ifNull(checkin_event_id, ''), ifNull(checkout_event_id, '')]),
            absorbed_event_ids
        )) AS named_id
        FROM sessions FINAL
        WHERE member_id IN (SELECT member FROM raw)
          AND start >= %(sessions_from)s
          AND voided = 0
    )
SELECT
    part,
    toDate(scan_time, 'Asia/Shanghai') AS day,
    count() AS raw_scans,
    countIf(accounted) AS accounted_scans,
    groupArrayIf(%(limit)s)((member, event_id, log_offset, scan_time), NOT accounted) AS missing
FROM (SELECT *, event_id IN (SELECT named_id FROM named) AS accounted FROM raw)
GROUP BY part, day
ORDER BY part, day
SETTINGS max_threads = 1
"""


class PartitionDay(BaseModel):
    partition: int
    day: date
    raw_scans: int
    accounted: int
    unaccounted: int


class UnaccountedScan(BaseModel):
    partition: int
    day: date
    member_id: str
    event_id: str
    offset: int
    scanned_at: datetime


class Reconciliation(BaseModel):
    """One run's result: what was compared and every difference (the first `limit` listed)."""

    ran_at: datetime
    # Scans received in [since, settled_before) and passed by the agent's committed offsets
    # (`committed`, per partition, as of `committed_at`) were compared.
    since: datetime
    settled_before: datetime
    committed_at: datetime
    committed: dict[int, int]
    raw_scans: int
    unaccounted_total: int
    partitions: list[PartitionDay]
    unaccounted: list[UnaccountedScan]

    def unaccounted_by_partition(self) -> dict[int, int]:
        out = dict.fromkeys(self.committed, 0)
        for p in self.partitions:
            out[p.partition] = out.get(p.partition, 0) + p.unaccounted
        return out

    def raw_by_partition(self) -> dict[int, int]:
        out = dict.fromkeys(self.committed, 0)
        for p in self.partitions:
            out[p.partition] = out.get(p.partition, 0) + p.raw_scans
        return out


def bounds_array(committed: Mapping[int, int]) -> list[int]:
    """`committed` as the SQL's array (index p + 1); a partition without a commit is 0, so none
    of its scans is due."""
    size = max(committed, default=-1) + 1
    return [max(0, committed.get(p, 0)) for p in range(size)]


def account(
    wh: Warehouse,
    *,
    since: datetime,
    settled_before: datetime,
    committed: Mapping[int, int],
    committed_at: datetime,
    max_scan_age: timedelta,
    limit: int,
    now: datetime | None = None,
) -> Reconciliation:
    """Compares the raw scans due with the scans the live sessions name (see ACCOUNT_SQL)."""
    scanned_from = since - max_scan_age
    rows = wh.query(
        ACCOUNT_SQL,
        {
            "scanned_from": scanned_from,
            "since": since,
            "settled": settled_before,
            "bounds": bounds_array(committed),
            "sessions_from": scanned_from - SESSION_SPAN,
            "limit": limit,
        },
    )
    days: list[PartitionDay] = []
    missing: list[UnaccountedScan] = []
    for partition, day, raw_scans, accounted, sample in rows:
        days.append(
            PartitionDay(
                partition=partition,
                day=day,
                raw_scans=raw_scans,
                accounted=accounted,
                unaccounted=raw_scans - accounted,
            )
        )
        missing.extend(
            UnaccountedScan(
                partition=partition,
                day=day,
                member_id=member_id,
                event_id=event_id,
                offset=offset,
                scanned_at=scanned_at,
            )
            for member_id, event_id, offset, scanned_at in sample
        )
    missing.sort(key=lambda u: (u.partition, u.offset, u.event_id))
    return Reconciliation(
        ran_at=now or utcnow(),
        since=since,
        settled_before=settled_before,
        committed_at=committed_at,
        committed=dict(committed),
        raw_scans=sum(d.raw_scans for d in days),
        unaccounted_total=sum(d.unaccounted for d in days),
        partitions=days,
        unaccounted=missing[:limit],
    )


class Snapshots:
    """The agent's committed offsets as read at each run, kept until a newer one is settled."""

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self._items: deque[tuple[float, datetime, dict[int, int]]] = deque()

    def add(self, mono: float, wall: datetime, committed: dict[int, int]) -> None:
        self._items.append((mono, wall, committed))

    def settled(self, mono: float) -> tuple[datetime, dict[int, int]] | None:
        """The newest snapshot at least `settle_s` old (older ones are dropped), or None."""
        best: tuple[float, datetime, dict[int, int]] | None = None
        while self._items and mono - self._items[0][0] >= self.settle_s:
            best = self._items.popleft()
        if best is None:
            return None
        # Kept as the oldest: the next run may have no newer settled snapshot.
        self._items.appendleft(best)
        return best[1], best[2]


def committed_offsets(settings: Settings, admin: Any) -> dict[int, int]:
    """The session agent's committed offsets on `checkins`, by partition."""
    group = settings.topic(SESSION_AGENT_GROUP)
    topic = settings.topic(CHECKINS.name)
    offsets = admin.list_group_offsets({group: None}).get(group, {})
    return {tp.partition: int(om.offset) for tp, om in offsets.items() if tp.topic == topic}


_latest: Reconciliation | None = None
_latest_lock = threading.Lock()
_running = 0


def running() -> bool:
    """Whether this process runs the job."""
    with _latest_lock:
        return _running > 0


def latest_result() -> Reconciliation | None:
    """The latest completed run in this process (None: the job does not run here, or has not
    compared anything yet)."""
    with _latest_lock:
        return _latest


def _publish(result: Reconciliation) -> None:
    global _latest
    with _latest_lock:
        _latest = result


class Reconciler:
    """The periodic job: `run(stop)` in a thread of the process that runs the sink."""

    def __init__(
        self,
        settings: Settings,
        warehouse: Warehouse,
        offsets: Callable[[], dict[int, int]] | None = None,
    ) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self.snapshots = Snapshots(settings.reconcile_settle_s)
        self._offsets = offsets or self._admin_offsets
        self._admin: Any = None
        self._reported: set[str] = set()
        self._partitions: set[int] = set()

    def _admin_offsets(self) -> dict[int, int]:
        from kafka import KafkaAdminClient

        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.settings.kafka_bootstrap.split(","),
                request_timeout_ms=10_000,
                api_version=(3, 9),
            )
        try:
            return committed_offsets(self.settings, self._admin)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:
                log.debug("closing the admin client failed", exc_info=True)
            self._admin = None

    def snapshot(self) -> None:
        """Reads the agent's committed offsets now; a failure leaves the older snapshots."""
        try:
            committed = self._offsets()
        except Exception as exc:
            log.warning("reconcile: committed offsets not read: %s", exc)
            return
        self.snapshots.add(time.monotonic(), utcnow(), committed)

    def run_once(self) -> Reconciliation | None:
        """Takes a snapshot and compares what the settled one makes due; None: nothing yet."""
        self.snapshot()
        settled = self.snapshots.settled(time.monotonic())
        if settled is None:
            metrics.RECONCILE_RUNS.labels(result="waiting").inc()
            return None
        committed_at, committed = settled
        now = utcnow()
        s = self.settings
        try:
            result = account(
                self.warehouse,
                since=now - timedelta(hours=s.reconcile_lookback_h),
                settled_before=now - timedelta(seconds=s.reconcile_settle_s),
                committed=committed,
                committed_at=committed_at,
                max_scan_age=timedelta(hours=s.max_scan_age_h, seconds=s.max_clock_skew_s),
                limit=s.reconcile_report_limit,
                now=now,
            )
        except Exception:
            metrics.RECONCILE_RUNS.labels(result="error").inc()
            log.exception("reconcile: the comparison failed")
            return None
        self._report(result)
        _publish(result)
        metrics.RECONCILE_RUNS.labels(result="ok").inc()
        metrics.RECONCILE_LAST_SUCCESS.set(time.time())
        return result

    def _report(self, result: Reconciliation) -> None:
        unaccounted = result.unaccounted_by_partition()
        checked = result.raw_by_partition()
        # Partitions reported before and absent now go back to 0 rather than keep a stale value.
        for p in self._partitions | set(unaccounted):
            metrics.UNACCOUNTED_SCANS.labels(partition=str(p)).set(unaccounted.get(p, 0))
            metrics.RECONCILED_SCANS.labels(partition=str(p)).set(checked.get(p, 0))
        self._partitions |= set(unaccounted)
        if not result.unaccounted_total:
            self._reported = set()
            log.debug("reconcile: %d raw scans, all named by sessions", result.raw_scans)
            return
        log.warning(
            "reconcile: %d of %d raw scans not applied by the sessions (partitions %s)",
            result.unaccounted_total,
            result.raw_scans,
            {p: n for p, n in sorted(unaccounted.items()) if n},
            extra={"unaccounted": result.unaccounted_total, "raw_scans": result.raw_scans},
        )
        now = {u.event_id for u in result.unaccounted}
        for u in result.unaccounted:
            if u.event_id in self._reported:
                continue
            log.warning(
                "reconcile: scan %s of member %s (partition %d, offset %d, scanned %s, day %s)"
                " is in raw checkins but no session names it",
                u.event_id,
                u.member_id,
                u.partition,
                u.offset,
                u.scanned_at.isoformat(),
                u.day.isoformat(),
                extra={
                    "event_id": u.event_id,
                    "member_id": u.member_id,
                    "partition": u.partition,
                    "offset": u.offset,
                    "day": u.day.isoformat(),
                },
            )
        self._reported = now

    def run(self, stop: threading.Event) -> None:
        interval = self.settings.reconcile_interval_s
        log.info(
            "reconcile: every %.0f s, scans settled %.0f s, looking back %.0f h",
            interval,
            self.settings.reconcile_settle_s,
            self.settings.reconcile_lookback_h,
        )
        self.snapshot()
        try:
            while not stop.wait(interval):
                try:
                    self.run_once()
                except Exception:
                    # The guard must outlive any one failure; the runs counter shows it.
                    metrics.RECONCILE_RUNS.labels(result="error").inc()
                    log.exception("reconcile: run failed")
        finally:
            self.close()


def start(
    settings: Settings, warehouse: Warehouse, stop: threading.Event
) -> threading.Thread | None:
    """Runs the job in a daemon thread until `stop` is set (None when RECONCILE_INTERVAL_S=0)."""
    if not settings.reconcile_interval_s:
        return None
    reconciler = Reconciler(settings, warehouse)

    def target() -> None:
        global _latest, _running
        with _latest_lock:
            # A result of an earlier job in this process (another database, in tests) is not
            # this one's.
            _latest = None
            _running += 1
        try:
            reconciler.run(stop)
        finally:
            with _latest_lock:
                _running -= 1

    thread = threading.Thread(target=target, name="reconcile", daemon=True)
    thread.start()
    return thread
