"""The faust app: one per deployment; agents live in streams.agents and register on import.

Agents keep ordered state (open sessions) in changelog-backed tables and write their results
to Kafka topics, never to ClickHouse: the sink loads those topics, so ClickHouse can always be
rebuilt from the log.
"""

from __future__ import annotations

from typing import Any

import faust

from services import gc_watch, metrics
from services.logging import dict_config as log_dict_config
from services.settings import get_settings
from services.topics import CHECKINS, DEAD_LETTER, STREAMS_APP_ID, TopicSpec
from streams import faust_fixes

faust_fixes.apply()

settings = get_settings()

WORKER_MAX_POLL_RECORDS = 1000

app = faust.App(
    settings.topic(STREAMS_APP_ID),
    broker=f"kafka://{settings.kafka_bootstrap}",
    # STATE_STORE: rocksdb (rocksdict, under DATA_DIR/faust) or memory; changelog-backed either
    # way (services/settings.py, streams/state_store.py).
    store=f"{settings.state_store}://",
    datadir=str(settings.data_dir / "faust"),
    topic_partitions=CHECKINS.partitions,
    topic_replication_factor=1,
    # Agents only send to declared topics; the tables' changelog topics are declared with the
    # others (services.topics.STREAMS_CHANGELOGS), so faust finds them made.
    topic_allow_declare=True,
    web_enabled=True,
    web_port=settings.worker_web_port,
    web_bind=settings.metrics_host,
    broker_commit_every=1000,
    broker_commit_interval=1.0,
    producer_acks=-1,
    # A member's state is a JSON document of some kilobytes, written to the changelog once per
    # batch: zstd makes it several times smaller on the wire and in the broker, and batches of
    # up to 1 MiB let it compress across records (faust's default, 16 KiB, is below one state).
    # (lz4 was tried: aiokafka compresses it at level 9, twice zstd's CPU here.) A 5 ms linger
    # gathers a batch's records into a few produce requests: the broker's CPU per scan fell by
    # a third, and on 2 cores the broker competes with the worker.
    producer_compression_type="zstd",
    producer_max_batch_size=1024 * 1024,
    producer_linger_ms=5,
    # A worker that dies without leaving the group (SIGKILL, a lost host) holds its partitions
    # until the session times out: keep that short so a restarted or surviving worker resumes
    # the sessions within seconds.
    broker_session_timeout=10.0,
    # At most this many records decoded per poll. faust's default (None) makes aiokafka decode
    # everything a fetch returned at once, and a fetch is 1 MiB *compressed* per partition: a
    # changelog of zstd-compressed member states came back as ~500 MB of Python objects at
    # 100,000 members (the rebuild's RSS peak, bench/findings.md section 6). The rest of a
    # fetch waits compressed in aiokafka; an agent batch is SESSION_BATCH_SIZE (1,000).
    broker_max_poll_records=WORKER_MAX_POLL_RECORDS,
    broker_heartbeat_interval=2.0,
    consumer_auto_offset_reset="earliest",
    autodiscover=False,
    # LOG_FORMAT=json: one JSON object per line (services.logging); else faust's text logs.
    logging_config=log_dict_config(settings.log_format),
)


def raw_topic(*specs: TopicSpec) -> faust.TopicT:
    """A topic (or several, read as one stream) of our own JSON events, passed through as bytes:
    the agents parse them with the shared event contract, not with faust's records."""
    return app.topic(
        *(settings.topic(s.name) for s in specs),
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
        partitions=specs[0].partitions,
        internal=False,
    )


checkins_topic = raw_topic(CHECKINS)
dead_letter_topic = raw_topic(DEAD_LETTER)


def update_lag() -> dict[str, int]:
    """`volunteer_agent_lag` per input topic, from faust's monitor: the end offset seen with the
    last fetched records minus the committed offset, over the partitions this worker owns."""
    mon = app.monitor
    ends: dict[tuple[str, int], int] = {}
    done: dict[tuple[str, int], int] = {}
    for tp in app.assignor.assigned_actives():
        if tp.topic.endswith("-changelog") or tp not in mon.tp_end_offsets:
            continue
        key = (tp.topic.removeprefix(settings.topic_prefix), tp.partition)
        ends[key] = mon.tp_end_offsets[tp]
        if tp in mon.tp_committed_offsets:
            done[key] = mon.tp_committed_offsets[tp]
    lag = metrics.lag_by_topic(ends, done)
    for topic, n in lag.items():
        metrics.AGENT_LAG.labels(topic=topic).set(n)
    return lag


gc_watch.install()


@app.on_rebalance_complete.connect
async def _freeze_heap(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Once the tables are recovered, what exists (code, app, a memory store's table) leaves
    the collector's walks: the worker's collections then walk what its batches made
    (services/gc_watch.py; bench/findings.md, section 5)."""
    gc_watch.freeze()
    gc_watch.release_free_memory()


@app.page("/metrics")
async def prometheus_metrics(web: Any, request: Any) -> Any:
    """The worker's Prometheus metrics (operations, issue 7)."""
    update_lag()
    # aiohttp refuses parameters (version, charset) in `content_type`: the header carries them.
    return web.bytes(metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})


# Registers the agents with the app.
from streams.agents import activities as _activities  # noqa: E402,F401
from streams.agents import lists as _lists  # noqa: E402,F401
from streams.agents import sessions as _sessions  # noqa: E402,F401
