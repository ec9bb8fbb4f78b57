"""The faust tables' changelog topics are the ones deploys create (services.topics)."""

from __future__ import annotations

from services.topics import ALL_TOPICS, STREAMS_APP_ID, STREAMS_CHANGELOGS
from streams.agents import activities as activities_agent
from streams.agents import lists as lists_agent
from streams.agents import sessions as sessions_agent
from streams.app import app


def test_every_table_changelog_is_declared_with_the_topics() -> None:
    # The unit tests run without TOPIC_PREFIX: faust's names are the declared ones as they are.
    assert app.conf.id == STREAMS_APP_ID
    declared = {s.name: s for s in STREAMS_CHANGELOGS}
    tables = [
        sessions_agent.member_state,
        sessions_agent.partition_index,
        lists_agent.item_state,
        activities_agent.activity_state,
    ]
    for table in tables:
        name = table.changelog_topic.get_topic_name()
        assert name in declared, name
        spec = declared[name]
        assert spec.compacted and spec.partitions == table.partitions
    assert len(declared) == len(tables) == len(set(declared))
    assert all(s in ALL_TOPICS for s in STREAMS_CHANGELOGS)


def test_the_stacks_settled_wait_covers_every_topic_the_agents_read() -> None:
    # Stack.settled() counts a topic the worker never committed on as unread: it must know
    # every input, or it would call a backlog on a new agent's topic settled.
    from tests.support.stack import WORKER_INPUTS

    read = {t for agent in app.agents.values() for t in agent.channel.topics}
    assert read == {s.name for s in WORKER_INPUTS}
