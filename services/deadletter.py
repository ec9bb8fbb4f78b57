"""Inspect and replay the dead-letter topic: `python -m services.deadletter list|replay`.

Invalid messages reach `dead-letter` from the sink (headers `reason`, `source_topic`) and from
the agents (`reason`, `source`, and `source_topic` where known). `list` prints each one's
offset, reason, source and a payload excerpt. `replay` sends the messages that are valid *now*
(after the fix of whatever refused them) back to their source topic with the same key and
bytes: the event ids are unchanged, so a consumer that had already taken one drops it as a
duplicate. What was replayed is recorded as the offset of the consumer group
`<prefix>dead-letter-replay` on the dead-letter topic, so the next replay starts after it
(`--all` starts from the beginning again, harmlessly).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from services.events import parse_event
from services.processors import ROUTES, InvalidMessage, process
from services.settings import Settings, get_settings
from services.topics import CHECKINS, DEAD_LETTER, LIST_COMMANDS

# Agents that did not name the topic (older records): where their input comes from.
AGENT_SOURCES = {"pair_sessions": CHECKINS.name, "judge_list_commands": LIST_COMMANDS.name}
REPLAY_GROUP = "dead-letter-replay"


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    partition: int
    reason: str
    source: str  # "sink" or the agent's name
    source_topic: str  # without the deployment's prefix
    key: bytes | None
    value: bytes | None

    def excerpt(self, n: int = 160) -> str:
        text = (self.value or b"").decode("utf-8", "replace")
        return text if len(text) <= n else text[:n] + "…"


def decode(
    prefix: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
) -> DeadLetter:
    """One dead-letter record, whoever wrote it (pure)."""
    h = {k: (v or b"").decode("utf-8", "replace") for k, v in headers or []}
    source = h.get("source") or "sink"
    topic = h.get("source_topic") or AGENT_SOURCES.get(source, "")
    return DeadLetter(
        offset=offset,
        partition=partition,
        reason=h.get("reason", ""),
        source=source,
        source_topic=topic.removeprefix(prefix),
        key=key,
        value=value,
    )


def still_invalid(topic: str, value: bytes | None) -> str | None:
    """Why `value` would be refused on `topic` today, or None if it would now be taken."""
    try:
        if topic in ROUTES:
            process(topic, value)
        else:
            parse_event(value or b"")
    except (InvalidMessage, ValueError) as exc:
        return str(exc)
    return None


def _consumer(settings: Settings, group: str | None) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        group_id=group,
        enable_auto_commit=False,
        api_version=(3, 9),
        consumer_timeout_ms=1000,
    )


def read(
    settings: Settings, from_committed: bool = False, timeout_s: float = 60.0
) -> Iterator[DeadLetter]:
    """Every dead letter up to the end offsets as of the call (from the replay group's offset
    when `from_committed`), oldest first, bounded by `timeout_s`."""
    name = settings.topic(DEAD_LETTER.name)
    group = settings.topic(REPLAY_GROUP) if from_committed else None
    c = _consumer(settings, group)
    try:
        parts = [TopicPartition(name, p) for p in sorted(c.partitions_for_topic(name) or ())]
        if not parts:
            return
        c.assign(parts)
        ends = c.end_offsets(parts)
        for tp in parts:
            start = c.committed(tp) if from_committed else None
            c.seek(tp, start or 0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(c.position(tp) < ends[tp] for tp in parts):
            for tp, msgs in c.poll(timeout_ms=500, max_records=500).items():
                for m in msgs:
                    if m.offset < ends[tp]:
                        yield decode(
                            settings.topic_prefix, tp.partition, m.offset, m.key, m.value, m.headers
                        )
    finally:
        c.close()


@dataclass
class ReplayReport:
    replayed: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    still_invalid: dict[int, str] = field(default_factory=dict)
    no_source: list[int] = field(default_factory=list)
    skipped_other_topic: int = 0
    dry_run: bool = False


def replay(
    settings: Settings,
    source_topic: str | None = None,
    dry_run: bool = False,
    from_start: bool = False,
) -> ReplayReport:
    report = ReplayReport(dry_run=dry_run)
    seen: set[tuple[str, str]] = set()
    todo: list[DeadLetter] = []
    last: dict[int, int] = {}
    for d in read(settings, from_committed=not from_start):
        last[d.partition] = d.offset
        if source_topic and d.source_topic != source_topic:
            report.skipped_other_topic += 1
            continue
        if not d.source_topic:
            report.no_source.append(d.offset)
            continue
        why = still_invalid(d.source_topic, d.value)
        if why is not None:
            report.still_invalid[d.offset] = why
            continue
        # The sink and an agent may both have refused the same message: send it once.
        ident = (d.source_topic, hashlib.sha256(d.value or b"").hexdigest())
        if ident in seen:
            report.duplicates.append(d.offset)
            continue
        seen.add(ident)
        todo.append(d)
    if dry_run:
        report.replayed = [d.offset for d in todo]
        return report
    p = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        api_version=(3, 9),
    )
    try:
        futures = [p.send(settings.topic(d.source_topic), key=d.key, value=d.value) for d in todo]
        p.flush(timeout=60)
        for f in futures:
            f.get(timeout=1)
    finally:
        p.close(timeout=5)
    report.replayed = [d.offset for d in todo]
    if last and not source_topic:
        # Recorded only after every replayed record was acknowledged; a filtered replay leaves
        # the record alone so the other topics' letters are still ahead of it.
        c = _consumer(settings, settings.topic(REPLAY_GROUP))
        try:
            name = settings.topic(DEAD_LETTER.name)
            c.commit(
                {
                    TopicPartition(name, part): OffsetAndMetadata(off + 1, "replayed", -1)
                    for part, off in last.items()
                }
            )
        finally:
            c.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="print the dead letters")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    rp = sub.add_parser("replay", help="send the now-valid dead letters back to their topic")
    rp.add_argument("--source-topic", help="only letters from this topic (no prefix)")
    rp.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    rp.add_argument("--all", action="store_true", help="from the beginning, not the record")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.cmd == "list":
        n = 0
        for d in read(settings):
            if n >= args.limit:
                break
            n += 1
            if args.json:
                row = {k: v for k, v in asdict(d).items() if k not in ("key", "value")}
                row["excerpt"] = d.excerpt()
                print(json.dumps(row, ensure_ascii=False))
            else:
                print(
                    f"#{d.offset} [{d.source} ← {d.source_topic or '?'}] {d.reason[:200]}\n"
                    f"    {d.excerpt()}"
                )
        print(f"{n} dead letter(s) shown")
        return 0
    report = replay(settings, args.source_topic, args.dry_run, args.all)
    print(json.dumps(asdict(report), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
