"""The bare baseline of the stream benchmark, run as its own process by bench.stream.

A kafka-python consumer reads the scans, computes sessions and weekly totals with the same pure
rules as the faust agent (services.sessions, state in a dict), and inserts the same rows (raw
scans, sessions, member weeks, with the sink's row functions and dedup tokens) in batches with
clickhouse-connect, committing offsets after each insert. Prints READY once assigned, then one
JSON line with the wall-clock time it finished.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import defaultdict
from typing import Any

from kafka import KafkaConsumer

from services.events import CheckinScanned, parse_event
from services.processors import route_for_event
from services.sessions import LateScan, MemberState, SessionRules, on_scan
from services.settings import get_settings
from services.topics import CHECKINS
from services.warehouse.client import connect
from services.warehouse.migrate import migrate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args(argv)
    s = get_settings()
    rules = SessionRules.from_settings(s)
    wh = connect(s)
    migrate(wh)
    consumer = KafkaConsumer(
        s.topic(CHECKINS.name),
        bootstrap_servers=s.kafka_bootstrap.split(","),
        group_id=s.topic("bare-baseline"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=s.sink_batch_size,
        fetch_max_wait_ms=100,
        api_version=(3, 9),
    )
    deadline = time.monotonic() + 60
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(timeout_ms=100)
    print("READY", flush=True)
    states: dict[str, MemberState] = {}
    seen = late = rows_written = batches = 0
    deadline = time.monotonic() + args.timeout
    while seen < args.expect and time.monotonic() < deadline:
        polled = consumer.poll(timeout_ms=200, max_records=s.sink_batch_size)
        if not polled:
            continue
        rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        columns: dict[str, tuple[str, ...]] = {}
        spans: list[str] = []
        for tp, msgs in polled.items():
            spans.append(f"{tp.topic}/{tp.partition}:{msgs[0].offset}-{msgs[-1].offset + 1}")
            for m in msgs:
                seen += 1
                e = parse_event(m.value)
                if not isinstance(e, CheckinScanned):
                    continue
                r = route_for_event(e)
                row = r.to_row(e)
                # Raw scans carry their place in the log, as the sink writes them.
                rows[r.table].append((*row, m.partition, m.offset) if r.positioned else row)
                columns[r.table] = r.columns
                state = states.get(e.member_id) or MemberState(member_id=e.member_id)
                try:
                    state, out = on_scan(state, e, rules, None)
                except LateScan:
                    late += 1
                    continue
                states[e.member_id] = state
                for produced in out:
                    r = route_for_event(produced)
                    rows[r.table].append(r.to_row(produced))
                    columns[r.table] = r.columns
        span = ",".join(sorted(spans))
        for table, rs in rows.items():
            token = hashlib.sha256(f"{table}|{span}".encode()).hexdigest()
            wh.insert(table, rs, columns[table], dedup_token=token)
            rows_written += len(rs)
        consumer.commit()
        batches += 1
    done = time.time()
    consumer.close(autocommit=False)
    check = wh.query(
        "SELECT count(), sum(credited_seconds) FROM sessions FINAL WHERE voided = 0 AND counted = 1"
    )[0]
    weeks = wh.query("SELECT count(), sum(credited_seconds) FROM member_weeks FINAL")[0]
    print(
        json.dumps(
            {
                "done_at": done,
                "seen": seen,
                "late": late,
                "rows_written": rows_written,
                "batches": batches,
                "sessions_counted": int(check[0]),
                "session_seconds": int(check[1] or 0),
                "member_weeks": int(weeks[0]),
                "week_seconds": int(weeks[1] or 0),
            }
        ),
        flush=True,
    )
    return 0 if seen >= args.expect else 1


if __name__ == "__main__":
    sys.exit(main())
