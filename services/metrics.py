"""Prometheus metrics shared by the API, the sink and the faust worker (prometheus_client).

Each process has its own default registry: the API serves it at `GET /metrics`, the standalone
sink on `SINK_METRICS_PORT`, the worker on its faust web port at `/metrics`. With the embedded
sink the API's registry carries the sink's metrics too. No FastAPI or faust import here.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "CONTENT_TYPE_LATEST",
    "lag_by_topic",
    "render",
]

# API
CHECKINS = Counter(
    "volunteer_checkins",
    "Check-ins received by the API, by result: accepted, or the error code that refused them.",
    ["result"],
)

# `make run` (infra.run_local): the check-in edges it restarted after they died on their own.
EDGE_RESTARTS = Counter(
    "volunteer_edge_restarts",
    "Check-in edge processes restarted by the process that started them, by edge.",
    ["edge"],
)

# Sink
SINK_LAG = Gauge(
    "volunteer_sink_lag",
    "Messages on the sink's topics not yet committed to ClickHouse (end offset - committed).",
    ["topic"],
)
AGENT_LAG = Gauge(
    "volunteer_agent_lag",
    "Events on the worker's input topics not yet committed by this worker (end offset - "
    "committed, over the partitions it owns), as of the scrape.",
    ["topic"],
)
SINK_BATCH_ROWS = Histogram(
    "volunteer_sink_batch_rows",
    "Rows per table insert made by the sink.",
    buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 25000),
)
SINK_INSERT_SECONDS = Histogram(
    "volunteer_sink_insert_seconds",
    "Latency of one acknowledged ClickHouse insert made by the sink.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SINK_ROWS = Counter("volunteer_sink_rows", "Rows written by the sink, by table.", ["table"])
SINK_INSERT_FAILURES = Counter(
    "volunteer_sink_insert_failures", "Failed ClickHouse inserts (each retried).", ["table"]
)
DEAD_LETTERS = Counter(
    "volunteer_dead_letters",
    "Messages sent to the dead-letter topic, by who refused them and the source topic.",
    ["source", "topic"],
)

# The reconciliation of raw scans against sessions (services.reconcile), beside the sink.
UNACCOUNTED_SCANS = Gauge(
    "volunteer_unaccounted_scans",
    "Raw scans the session agent committed past (RECONCILE_SETTLE_S ago or more) that no "
    "non-voided session names, by Kafka partition (-1: written before positions were kept), "
    "as of the latest reconciliation.",
    ["partition"],
)
RECONCILED_SCANS = Gauge(
    "volunteer_reconciled_scans",
    "Raw scans the latest reconciliation checked (due, within RECONCILE_LOOKBACK_H), by Kafka "
    "partition.",
    ["partition"],
)
RECONCILE_RUNS = Counter(
    "volunteer_reconcile_runs",
    "Reconciliation runs, by result: ok, waiting (no committed offsets old enough yet), error.",
    ["result"],
)
RECONCILE_LAST_SUCCESS = Gauge(
    "volunteer_reconcile_last_success_timestamp_seconds",
    "When the latest reconciliation that compared anything finished (Unix time).",
)

# faust worker (pair_sessions)
AGENT_SCANS = Counter(
    "volunteer_agent_events", "Events processed by the session agent, by kind.", ["kind"]
)
AGENT_SESSIONS = Counter(
    "volunteer_agent_sessions_emitted", "SessionRecorded revisions emitted by the session agent."
)
AGENT_WEEKS = Counter(
    "volunteer_agent_member_weeks_emitted", "MemberWeekRecorded records emitted by the agent."
)

AGENT_REDELIVERED = Counter(
    "volunteer_agent_redelivered",
    "Input messages an agent skipped because its ledger shows them applied already.",
    ["topic"],
)
# Python's cyclic garbage collector in this process (services/gc_watch.py): a pause of the
# event loop; the worker's goal is none over 100 ms (issue 16).
GC_PAUSE_SECONDS = Histogram(
    "volunteer_gc_pause_seconds",
    "Pauses of Python's cyclic garbage collector, by generation.",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
GC_FROZEN_OBJECTS = Gauge(
    "volunteer_gc_frozen_objects",
    "Objects moved out of the collector's walks (gc.get_freeze_count()); levels off when "
    "nothing frozen leaks.",
)
GC_PAUSE_MAX_SECONDS = Gauge(
    "volunteer_gc_pause_max_seconds",
    "The longest pause of Python's cyclic garbage collector since the process started.",
)
AGENT_HOLES = Counter(
    "volunteer_agent_holes",
    "Input messages faust never delivered to the agent, which it read straight from Kafka.",
    ["topic"],
)
# Apart from the holes (a message skipped before a later one that was delivered): the catch-up
# reads the end of a partition faust did not deliver within a check (streams/guarantee.py), a
# normal read after a takeover or behind a backlog that must not fire the holes' alert.
AGENT_TAIL_READS = Counter(
    "volunteer_agent_tail_reads",
    "Input messages at the end of a partition that faust did not deliver to the agent within a "
    "catch-up check, which it read straight from Kafka.",
    ["topic"],
)


def render() -> bytes:
    """The process's metrics in the Prometheus text format."""
    return generate_latest()


def lag_by_topic(
    ends: Mapping[tuple[str, int], int], done: Mapping[tuple[str, int], int]
) -> dict[str, int]:
    """Per-topic lag from end offsets and the offsets already done (committed, or the
    position where nothing was committed yet) per (topic, partition). A partition without a
    known done offset counts from 0; a done offset past the end (a stale end) counts 0."""
    out: dict[str, int] = {}
    for (topic, partition), end in ends.items():
        behind = max(0, end - done.get((topic, partition), 0))
        out[topic] = out.get(topic, 0) + behind
    return out
