"""What a check-in edge knows, read from Kafka alone (issue 16): no ClickHouse, no chDB.

A scan needs its member, station and grid (the check-in replica), whether the caller's token
was revoked, and, for the rare scan dated before its member's last change of unit, community,
grid or status, that member's earlier values. All of them are on the log already: the
compacted `registry.grids`, `registry.stations` and `registry.members` topics hold every
entry's latest version, `auth.revocations` every withdrawn token, and `registry.history` (not
compacted) every change with the values before it. One consumer thread per edge process reads
them from the beginning at start (no consumer group: every edge reads everything) and then
follows them, so a change made through the reads process reaches the edges within a poll.

Why the log and not the reads process: the edge then depends on Kafka alone, which a scan
needs anyway (it is published there), so an edge keeps taking check-ins while the reads process
restarts or ClickHouse is down; and no reads process has to answer N edges' refreshes.

How current: every `refresh_s` the thread asks the log's end offsets and, once it has read up
to them, marks the replica fresh as of the moment it asked (`CheckinReplica.mark_fresh`): the
same bound as the database refresh (`max_stale_s`, 5 s) before an edge stops trusting it (and
answers 503, as it would to a publish). A member or station the replica lacks is asked again
after one catch-up to the log's end (`catch_up`, bounded by EDGE_CATCH_UP_S), so a member
created a moment ago through the reads process is found, not refused.

Kept from `registry.history`: only members' updates of the attribution fields (unit,
community, grid, status), the input of the one rule `services.reads.registry.member_then`.
Creations and other kinds are read and dropped. A province's registry is millions of members:
the start reads that many records once (tens of seconds), and keeps one small entry per member.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services import topics
from services.events import (
    GridUpserted,
    MemberUpserted,
    RegistryChanged,
    StationUpserted,
    TokenRevoked,
    parse_event,
)
from services.reads.registry import Change, MemberThen, member_then
from services.registry.replica import ATTRIBUTION_FIELDS, CheckinReplica
from services.settings import Settings

log = logging.getLogger(__name__)

FEED_TOPICS = (
    topics.GRIDS,
    topics.STATIONS,
    topics.MEMBERS,
    topics.REGISTRY_HISTORY,
    topics.REVOCATIONS,
)


class MemberChanges:
    """Members' changes of attribution, from `registry.history`: the edge's `MemberHistory`
    (same `at`, answered from memory). A change seen twice (a re-sent record) is kept once."""

    def __init__(self) -> None:
        self._changes: dict[str, list[tuple[int, Change]]] = {}
        self._lock = threading.Lock()

    def add(self, ev: RegistryChanged) -> bool:
        """Keeps the change if it is a member's attribution change; whether it is one."""
        if ev.entity_kind != "member" or ev.operation != "update":
            return False
        new = []
        for fc in ev.changes:
            if fc.field in ATTRIBUTION_FIELDS:
                before = json.loads(fc.before) if fc.before is not None else None
                when = (
                    ev.occurred_at if ev.occurred_at.tzinfo else ev.occurred_at.replace(tzinfo=UTC)
                )
                new.append(
                    (ev.version, Change(when, fc.field, None if before is None else str(before)))
                )
        if not new:
            return False
        with self._lock:
            cur = self._changes.setdefault(ev.entity_id, [])
            seen = {(v, c.field) for v, c in cur}
            cur.extend(x for x in new if (x[0], x[1].field) not in seen)
            # The database reads them ordered by (changed_at, version); so does this.
            cur.sort(key=lambda x: (x[1].at, x[0]))
        return True

    def at(self, now: MemberThen, member_id: str, version: int, at: datetime) -> MemberThen:
        with self._lock:
            changes = [c for _, c in self._changes.get(member_id, ())]
        return member_then(now, changes, at)

    def __len__(self) -> int:
        return len(self._changes)


class RevokedTokens:
    """Withdrawn bearer tokens, from `auth.revocations`: the edge's `RevocationList` (the same
    `check_nowait` and `is_revoked`, answered from memory; None before the first load)."""

    def __init__(self) -> None:
        self._revoked: dict[str, float] = {}
        self.loaded = False

    def add(self, ev: TokenRevoked) -> None:
        self._revoked[ev.token_id] = ev.expires_at.timestamp()

    def prune(self, now: float) -> None:
        # An expired token is refused by its expiry anyway.
        for token_id in [t for t, exp in self._revoked.items() if exp <= now]:
            self._revoked.pop(token_id, None)

    def check_nowait(self, token_id: str) -> bool | None:
        if not self.loaded:
            return None
        return token_id in self._revoked

    def is_revoked(self, token_id: str) -> bool:
        return token_id in self._revoked

    def __len__(self) -> int:
        return len(self._revoked)


@dataclass
class _Target:
    asked: float  # monotonic
    ends: dict[Any, int]


class EdgeFeed:
    """The consumer thread feeding a `CheckinReplica`, `MemberChanges` and `RevokedTokens`."""

    def __init__(
        self,
        settings: Settings,
        replica: CheckinReplica,
        history: MemberChanges,
        revoked: RevokedTokens,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.replica = replica
        self.history = history
        self.revoked = revoked
        self.refresh_s = settings.registry_refresh_s
        self._clock = clock
        self._consumer: Any = None
        self._parts: list[Any] = []
        self._stop = threading.Event()
        self._wanted = threading.Event()
        self._cond = threading.Condition()
        self._fresh_at = float("-inf")
        self._asked_at = float("-inf")
        self._target: _Target | None = None
        self._thread: threading.Thread | None = None
        self.records = 0
        self.errors = 0

    def start(self, timeout_s: float = 300.0) -> None:
        """Reads the topics up to their end (blocking: call before serving), then follows them
        in a thread. Raises TimeoutError if the log could not be read to its end in time."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap.split(","),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="checkin-edge",
            request_timeout_ms=10_000,
        )
        deadline = time.monotonic() + timeout_s
        parts = []
        for spec in FEED_TOPICS:
            name = self.settings.topic(spec.name)
            found = consumer.partitions_for_topic(name)
            while not found and time.monotonic() < deadline:
                time.sleep(0.5)
                consumer.topics()  # refreshes the metadata
                found = consumer.partitions_for_topic(name)
            if not found:
                consumer.close()
                raise TimeoutError(f"topic {name} not found: create the topics (make migrate)")
            parts += [TopicPartition(name, p) for p in sorted(found)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        self._consumer, self._parts = consumer, parts
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="edge-feed", daemon=True)
        self._thread.start()
        if not self.catch_up(max(0.1, deadline - time.monotonic())):
            self.stop()
            raise TimeoutError(f"the registry topics were not read to their end in {timeout_s}s")
        self.revoked.loaded = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def catch_up(self, timeout_s: float) -> bool:
        """Waits until the feed has read everything the log held when this was called; whether
        it did within `timeout_s`. Blocking: from a thread."""
        asked = self._clock()
        self._wanted.set()
        with self._cond:
            return self._cond.wait_for(lambda: self._fresh_at >= asked, timeout_s)

    @property
    def caught_up_s_ago(self) -> float:
        return self._clock() - self._fresh_at

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception:  # the broker away: try again; the replica goes stale meanwhile
                    self.errors += 1
                    self._target = None
                    log.warning("edge feed: reading the registry topics failed", exc_info=True)
                    self._stop.wait(0.5)
        finally:
            try:
                self._consumer.close()
            except Exception:
                log.debug("edge feed: closing the consumer failed", exc_info=True)

    def _step(self) -> None:
        consumer = self._consumer
        now = self._clock()
        if self._target is None and (
            self._wanted.is_set() or now - self._asked_at >= self.refresh_s
        ):
            self._wanted.clear()
            self._asked_at = now
            self._target = _Target(now, dict(consumer.end_offsets(self._parts)))
        batch = consumer.poll(timeout_ms=20 if self._target is not None else 200, max_records=5000)
        for records in batch.values():
            for rec in records:
                self._apply(rec.value)
        target = self._target
        if target is not None and all(
            consumer.position(tp) >= end for tp, end in target.ends.items()
        ):
            self._target = None
            self.revoked.prune(time.time())
            self.replica.mark_fresh(target.asked, self.refresh_s)
            with self._cond:
                self._fresh_at = target.asked
                self._cond.notify_all()

    def _apply(self, raw: bytes | None) -> None:
        if raw is None:
            return
        try:
            ev = parse_event(raw)
        except Exception:  # not ours to judge: the sink dead-letters what is invalid
            log.debug("edge feed: skipped an unreadable record", exc_info=True)
            return
        self.records += 1
        if isinstance(ev, MemberUpserted | StationUpserted | GridUpserted):
            self.replica.put(ev.record)
        elif isinstance(ev, RegistryChanged):
            if self.history.add(ev):
                self.replica.note_move(ev.entity_id, ev.version)
        elif isinstance(ev, TokenRevoked):
            self.revoked.add(ev)
