"""What a check-in edge knows, read from Kafka alone (issue 16): no ClickHouse, no chDB.

A scan needs its member, station and grid (the check-in replica), whether the caller's token
was revoked, and, for the rare scan dated before its member's last change of unit, community,
grid or status, that member's earlier values. All of them are on the log already: the
compacted `registry.grids`, `registry.stations` and `registry.members` topics hold every
entry's latest version, `auth.revocations` every withdrawn token, and `registry.history` (not
compacted) every change with the values before it. One consumer thread per edge process reads
them (no consumer group: every edge reads everything) and then follows them, so a change made
through the reads process reaches the edges within a poll.

**Start-up reads the compacted topics only**, so it is proportional to the current registry,
not to its history (a province's history is every member's creation and every edit since).
Which member moved when is on the member's value itself (`MemberUpserted.moved_at`, written by
the registry's write-through; a value without it counts as moved at its version, the
conservative side), so the edge routes every scan correctly from its first one. The changes
themselves (the values before a move) are needed only for a late scan of a moved member, and
only those after the oldest scan the route accepts (`MAX_SCAN_AGE_H` plus the clock skew): the
feed reads `registry.history` from that moment on (`offsets_for_times`, `HISTORY_MARGIN_S`
earlier still), after the edge is ready, in the background. A late scan of a moved member
arriving before that tail is read waits for it (`EdgeHistory`, up to `HISTORY_WAIT_S`; 503
after, the phone resends). Changes older than the window are dropped as time goes on.

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
Creations and other kinds are read and dropped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from services.publisher import PublishUnavailable
from services.reads.registry import Change, MemberThen, member_then
from services.registry.replica import ATTRIBUTION_FIELDS, CheckinReplica
from services.settings import Settings

log = logging.getLogger(__name__)

# Read from the beginning before an edge serves: every entry's latest version.
COMPACTED_TOPICS = (topics.GRIDS, topics.STATIONS, topics.MEMBERS, topics.REVOCATIONS)
# Read from the window's start, after the edge serves (see the module docstring).
HISTORY_TOPIC = topics.REGISTRY_HISTORY
FEED_TOPICS = (*COMPACTED_TOPICS, HISTORY_TOPIC)
# How much earlier than the oldest acceptable scan the history is read: a change's record is
# stamped by its producer's clock, which may be behind the edge's.
HISTORY_MARGIN_S = 3600.0
# How long a late scan of a moved member waits for the history's tail after a start.
HISTORY_WAIT_S = 30.0
PRUNE_EVERY_S = 600.0


def history_window_s(settings: Settings) -> float:
    """How far back the edge needs members' changes: a scan older than MAX_SCAN_AGE_H is refused
    by the route, and only a change after a scan's time changes its answer."""
    return settings.max_scan_age_h * 3600 + settings.max_clock_skew_s + HISTORY_MARGIN_S


class MemberChanges:
    """Members' changes of attribution, from `registry.history`: what the edge's
    `EdgeHistory` answers from. A change seen twice (a re-sent record) is kept once."""

    def __init__(self) -> None:
        self._changes: dict[str, list[tuple[int, Change]]] = {}
        self._lock = threading.Lock()
        # Set once the history's tail (the window, services.edge_feed) has been read.
        self.loaded = threading.Event()

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

    def latest(self, member_id: str) -> int:
        """The version of the member's latest change held (0: none)."""
        with self._lock:
            return max((v for v, _ in self._changes.get(member_id, ())), default=0)

    def prune(self, before: datetime) -> int:
        """Forgets changes made before `before` (no acceptable scan is that old); how many."""
        dropped = 0
        with self._lock:
            for member_id in list(self._changes):
                kept = [x for x in self._changes[member_id] if x[1].at >= before]
                dropped += len(self._changes[member_id]) - len(kept)
                if kept:
                    self._changes[member_id] = kept
                else:
                    del self._changes[member_id]
        return dropped

    def at(self, now: MemberThen, member_id: str, version: int, at: datetime) -> MemberThen:
        with self._lock:
            changes = [c for _, c in self._changes.get(member_id, ())]
        return member_then(now, changes, at)

    def __len__(self) -> int:
        return len(self._changes)


class EdgeHistory:
    """The edge's `api.context.History`: a member as they stood at an instant, from
    `MemberChanges`. Asked only for a scan dated before the member's last move (`moved_at`, from
    the member's value), so it first makes sure it holds that move: it waits for the history's
    tail after a start, and reads the log to its end once if the move is newer than any change
    held (its history record may follow its member record by a poll). Blocking: from a thread."""

    def __init__(
        self,
        changes: MemberChanges,
        replica: CheckinReplica,
        catch_up: Callable[[float], bool],
        catch_up_s: float,
        wait_s: float = HISTORY_WAIT_S,
    ) -> None:
        self.changes = changes
        self.replica = replica
        self._catch_up = catch_up
        self.catch_up_s = catch_up_s
        self.wait_s = wait_s

    def at(self, now: MemberThen, member_id: str, version: int, at: datetime) -> MemberThen:
        if not self.changes.loaded.wait(self.wait_s):
            raise PublishUnavailable("the registry history is still being read; retry")
        held = self.replica.member(member_id)
        moved = version if held is None or held.moved_at is None else held.moved_at
        if self.changes.latest(member_id) < moved:
            self._catch_up(self.catch_up_s)
        return self.changes.at(now, member_id, version, at)


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
        self.history_window_s = history_window_s(settings)
        self._clock = clock
        self._consumer: Any = None
        self._parts: list[Any] = []
        self._history_parts: list[Any] = []
        self._history_ends: dict[Any, int] | None = None
        self._history_started = 0.0
        self._resume_history = threading.Event()
        self._pruned_at = 0.0
        self._stop = threading.Event()
        self._wanted = threading.Event()
        self._cond = threading.Condition()
        self._fresh_at = float("-inf")
        self._asked_at = float("-inf")
        self._target: _Target | None = None
        self._thread: threading.Thread | None = None
        self.records = 0
        self.errors = 0
        # Records read per topic (full names), and what they were when the edge became ready.
        self.consumed: dict[str, int] = {}
        self.consumed_at_ready: dict[str, int] = {}

    def start(self, timeout_s: float = 300.0) -> None:
        """Reads the compacted topics up to their end (blocking: call before serving), then
        follows them and reads the history's window in a thread. Raises TimeoutError if the log
        could not be read to its end in time."""
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap.split(","),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="checkin-edge",
            request_timeout_ms=10_000,
        )
        deadline = time.monotonic() + timeout_s
        try:
            parts = self._partitions(consumer, COMPACTED_TOPICS, deadline)
            hist = self._partitions(consumer, (HISTORY_TOPIC,), deadline)
            consumer.assign(parts + hist)
            consumer.seek_to_beginning(*parts)
            # The first record stamped at or after the window's start (None: none is; from the
            # end then).
            floor_ms = int((time.time() - self.history_window_s) * 1000)
            found = consumer.offsets_for_times(dict.fromkeys(hist, floor_ms))
            ends = consumer.end_offsets(hist)
            for tp in hist:
                at = found.get(tp)
                consumer.seek(tp, at.offset if at is not None else ends[tp])
            consumer.pause(*hist)
        except BaseException:
            consumer.close()
            raise
        self._consumer, self._parts, self._history_parts = consumer, parts, hist
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="edge-feed", daemon=True)
        self._thread.start()
        if not self.catch_up(max(0.1, deadline - time.monotonic())):
            self.stop()
            raise TimeoutError(f"the registry topics were not read to their end in {timeout_s}s")
        self.consumed_at_ready = dict(self.consumed)
        self.revoked.loaded = True
        self._resume_history.set()

    def _partitions(self, consumer: Any, specs: tuple[Any, ...], deadline: float) -> list[Any]:
        from kafka import TopicPartition

        parts = []
        for spec in specs:
            name = self.settings.topic(spec.name)
            found = consumer.partitions_for_topic(name)
            while not found and time.monotonic() < deadline:
                time.sleep(0.5)
                consumer.topics()  # refreshes the metadata
                found = consumer.partitions_for_topic(name)
            if not found:
                raise TimeoutError(f"topic {name} not found: create the topics (make migrate)")
            parts += [TopicPartition(name, p) for p in sorted(found)]
        return parts

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
        if self._resume_history.is_set():
            self._resume_history.clear()
            # From now on a catch-up reads the history to its end too.
            self._history_ends = dict(consumer.end_offsets(self._history_parts))
            self._history_started = now
            consumer.resume(*self._history_parts)
            self._parts = self._parts + self._history_parts
        if self._target is None and (
            self._wanted.is_set() or now - self._asked_at >= self.refresh_s
        ):
            self._wanted.clear()
            self._asked_at = now
            self._target = _Target(now, dict(consumer.end_offsets(self._parts)))
        batch = consumer.poll(timeout_ms=20 if self._target is not None else 200, max_records=5000)
        for tp, records in batch.items():
            for rec in records:
                self._apply(rec.value)
            self.consumed[tp.topic] = self.consumed.get(tp.topic, 0) + len(records)
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
        ends = self._history_ends
        if ends is not None and all(consumer.position(tp) >= end for tp, end in ends.items()):
            self._history_ends = None
            self.history.loaded.set()
            self._pruned_at = now
            log.info(
                "edge feed: %d records of %s read in %.1f s (%d members' changes kept)",
                self.history_consumed,
                HISTORY_TOPIC.name,
                now - self._history_started,
                len(self.history),
            )
        if self.history.loaded.is_set() and now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            floor = datetime.now(UTC) - timedelta(seconds=self.history_window_s)
            self.history.prune(floor)

    @property
    def history_consumed(self) -> int:
        return self.consumed.get(self.settings.topic(HISTORY_TOPIC.name), 0)

    def _apply(self, raw: bytes | None) -> None:
        if raw is None:
            return
        try:
            ev = parse_event(raw)
        except Exception:  # not ours to judge: the sink dead-letters what is invalid
            log.debug("edge feed: skipped an unreadable record", exc_info=True)
            return
        self.records += 1
        if isinstance(ev, MemberUpserted):
            self.replica.put_value(ev.record, ev.moved_at)
        elif isinstance(ev, StationUpserted | GridUpserted):
            self.replica.put(ev.record)
        elif isinstance(ev, RegistryChanged):
            if self.history.add(ev):
                self.replica.note_move(ev.entity_id, ev.version)
        elif isinstance(ev, TokenRevoked):
            self.revoked.add(ev)
