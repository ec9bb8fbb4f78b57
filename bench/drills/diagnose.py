"""A failed drill's report, readable on its own: for each member off, the planned scans, where
each landed in Kafka (partition, offset, append time) and in the raw `checkins` table, the
member's sessions in `sessions FINAL` (status, flags, credited seconds, revision), and the
rebalance/commit timeline around each scan: which worker owned its partition when it was
appended, when the group's commit passed it, and the group changes and commits nearby.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.drills.storm import Event, Sample, owners_at, passed_at
from bench.drills.workload import PlannedScan

AROUND = timedelta(seconds=12)


@dataclass(frozen=True)
class KafkaScan:
    partition: int
    offset: int
    at: datetime  # the record's timestamp (the producer's create time)
    client_event_id: str
    event_id: str
    action: str


def kafka_scans(
    bootstrap: str, topic: str, members: set[str], timeout_s: float = 300.0
) -> dict[str, list[KafkaScan]]:
    """Every record of the members on the topic, read from the beginning of each partition up
    to its end offset as of now (a failed drill's stack is idle; bounded in time)."""
    from kafka import KafkaConsumer, TopicPartition

    out: dict[str, list[KafkaScan]] = {m: [] for m in members}
    keys = {m.encode(): m for m in members}
    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        api_version=(3, 9),
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    try:
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        c.assign(parts)
        c.seek_to_beginning(*parts)
        ends = c.end_offsets(parts)
        todo = {tp for tp in parts if ends[tp] > 0}
        deadline = time.monotonic() + timeout_s
        while todo and time.monotonic() < deadline:
            for tp, records in c.poll(timeout_ms=1000, max_records=10000).items():
                for r in records:
                    m = keys.get(r.key or b"")
                    if m is not None:
                        v = json.loads(r.value)
                        out[m].append(
                            KafkaScan(
                                tp.partition,
                                r.offset,
                                datetime.fromtimestamp(r.timestamp / 1000, UTC),
                                str(v.get("client_event_id", "")),
                                str(v.get("event_id", "")),
                                str(v.get("action", "")),
                            )
                        )
                    if r.offset + 1 >= ends[tp]:
                        todo.discard(tp)
    finally:
        c.close()
    return out


def _t(at: datetime | None) -> str:
    return at.strftime("%H:%M:%S.%f")[:-3] if at is not None else "never"


def _hms(v: Any) -> str:
    if not v:
        return "—"
    return str(v).replace("T", " ")[:19]


def member_report(
    member: str,
    figures: Mapping[str, str],
    planned: list[PlannedScan],
    acked: set[str],
    in_kafka: list[KafkaScan],
    details: Mapping[str, Any],
    events: list[Event],
    samples: list[Sample],
) -> str:
    """One member's section: figures, scans, sessions and the timeline around its scans."""
    lines = [f"#### `{member}`", ""]
    lines.append("- " + "; ".join(f"{k}: {v}" for k, v in figures.items()))
    by_cid = {k.client_event_id: k for k in in_kafka}
    raw = {r["client_event_id"]: r for r in details.get("checkins", [])}
    lines += [
        "",
        "| scan | scanned at (UTC) | acked | Kafka p/offset | appended | owner(s) then "
        "| commit passed | owner(s) at commit | raw `checkins` (received at, rows) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sorted(planned, key=lambda x: x.at):
        k = by_cid.get(s.client_event_id)
        r = raw.get(s.client_event_id)
        where = owners = passed = appended = owners_then = "—"
        if k is not None:
            where = f"p{k.partition}/{k.offset:,}"
            appended = _t(k.at)
            owners = ", ".join(owners_at(events, k.partition, k.at)) or "none"
            at = passed_at(samples, k.partition, k.offset)
            passed = _t(at)
            if at is not None:
                owners_then = ", ".join(owners_at(events, k.partition, at)) or "none"
        stored = f"{_hms(r['received_at'])}, {r['rows']}" if r else "MISSING"
        lines.append(
            f"| {s.action} `{s.client_event_id[:8]}` | {_hms(s.at.isoformat())} "
            f"| {'yes' if s.client_event_id in acked else 'NO'} | {where} | {appended} "
            f"| {owners} | {passed} | {owners_then} | {stored} |"
        )
    extra = [k for k in in_kafka if k.client_event_id not in {s.client_event_id for s in planned}]
    for k in extra:
        lines.append(
            f"| unplanned {k.action} `{k.client_event_id[:8]}` | | | p{k.partition}/{k.offset:,} | {_t(k.at)} | | | | |"
        )
    lines += [
        "",
        "| session | start → end (UTC) | status | flags | credited s | counted | revision "
        "| check-in / check-out event |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for r in details.get("sessions", []):
        lines.append(
            f"| `{str(r['session_id'])[:12]}` | {_hms(r['start'])} → {_hms(r['end'])} "
            f"| {r['status']} | {', '.join(r['flags']) or '—'} | {r['credited_seconds']:,} "
            f"| {r['counted']} | {r['revision']} "
            f"| `{str(r['checkin_event_id'] or '—')[:8]}` / `{str(r['checkout_event_id'] or '—')[:8]}` |"
        )
    if not details.get("sessions"):
        lines.append("| (none) | | | | | | | |")
    # The timeline: group changes and worker events near any of the member's scans, and the
    # commits of the scans' partitions near their append and commit-passing times.
    anchors: list[tuple[datetime, int]] = []
    for k in in_kafka:
        anchors.append((k.at, k.partition))
        p = passed_at(samples, k.partition, k.offset)
        if p is not None:
            anchors.append((p, k.partition))
    parts = {p for _, p in anchors}
    near = [
        e
        for e in events
        if any(abs(e.at - a) <= AROUND for a, _ in anchors)
        and (e.who != "commit" or any(e.what.startswith(f"p{p} ") for p in parts))
    ]
    marks = [
        Event(k.at, "scan", f"{k.action} appended at p{k.partition}/{k.offset:,}") for k in in_kafka
    ]
    lines += ["", f"Timeline (±{AROUND.seconds} s around the scans and their commits):", "```"]
    for e in sorted(near + marks, key=lambda e: e.at):
        lines.append(f"{_t(e.at)} {e.who:<8} {e.what}")
    lines += ["```", ""]
    return "\n".join(lines)
