"""The faust app: one per deployment; agents live in streams.agents and register on import.

Agents keep ordered state (open sessions) in changelog-backed tables and write their results
to Kafka topics, never to ClickHouse: the sink loads those topics, so ClickHouse can always be
rebuilt from the log.
"""

from __future__ import annotations

import faust

from services.settings import get_settings
from services.topics import CHECKINS, DEAD_LETTER, SESSIONS

settings = get_settings()

app = faust.App(
    settings.topic("volunteer-streams"),
    broker=f"kafka://{settings.kafka_bootstrap}",
    # In-memory tables recover from their changelog topics on start; a national deployment
    # with millions of members per worker would switch to rocksdb:// (rocksdict).
    store="memory://",
    datadir=str(settings.data_dir / "faust"),
    topic_partitions=CHECKINS.partitions,
    topic_replication_factor=1,
    # Agents only send to declared topics; faust's own changelog topics are created by faust.
    topic_allow_declare=True,
    web_enabled=True,
    web_port=settings.worker_web_port,
    web_bind="127.0.0.1",
    broker_commit_every=1000,
    broker_commit_interval=1.0,
    producer_acks=-1,
    consumer_auto_offset_reset="earliest",
    autodiscover=False,
)

checkins_topic = app.topic(
    settings.topic(CHECKINS.name),
    key_type=bytes,
    value_type=bytes,
    value_serializer="raw",
    key_serializer="raw",
    partitions=CHECKINS.partitions,
    internal=False,
)
sessions_topic = app.topic(
    settings.topic(SESSIONS.name),
    key_type=bytes,
    value_type=bytes,
    value_serializer="raw",
    key_serializer="raw",
    partitions=SESSIONS.partitions,
    internal=False,
)
dead_letter_topic = app.topic(
    settings.topic(DEAD_LETTER.name),
    key_type=bytes,
    value_type=bytes,
    value_serializer="raw",
    key_serializer="raw",
    internal=False,
)

# Registers the agents with the app.
from streams.agents import sessions as _sessions  # noqa: E402,F401
