"""The session agent's catch-up (streams/agents/sessions.py, on `Guarantee.catch_up`, issue 16):
a partition whose ledger stood still since the previous check while Kafka holds messages after
it gets them read directly and applied as a batch of the agent's (`_process`, under its batch
lock, at most SESSION_BATCH_SIZE); a partition that moves, or holds nothing after its ledger,
is left to faust's deliveries."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams.agents import sessions as agent
from streams.app import settings
from tests.support.guarantee import FakeGuarantee
from tests.support.stack import run_async

CHECKINS = agent._CHECKINS


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    guarantee = FakeGuarantee(
        {agent._CHECKINS, agent._REVIEWS, agent._CLOCK},
        {TP(CHECKINS, 1), TP(agent._CLOCK, 1)},
        end=40,
    )
    guarantee.ledger.start((CHECKINS, 1), 33)
    guarantee.ledger.start((agent._CLOCK, 1), 5)
    applied: list[list[int]] = []
    locked: list[bool] = []

    async def process(events: list[Any]) -> None:
        locked.append(agent._exclusive.locked())
        applied.append([e.message.offset for e in events])

    monkeypatch.setattr(agent, "GUARANTEE", guarantee)
    monkeypatch.setattr(agent, "_process", process)
    return SimpleNamespace(app=guarantee.app, guarantee=guarantee, applied=applied, locked=locked)


def test_a_tail_faust_does_not_deliver_is_read_and_applied_at_the_second_check(
    fake: SimpleNamespace,
) -> None:
    run_async(agent._catch_up())  # first sight: faust may still be delivering
    assert fake.applied == []
    run_async(agent._catch_up())  # stood still at 33 while Kafka ends at 40
    assert fake.applied == [[33, 34, 35, 36, 37, 38, 39]]
    # Under the agent's batch lock; the clock (compacted, it ticks again) is not caught up.
    assert fake.locked == [True]
    assert fake.guarantee.reads == [[33, 34, 35, 36, 37, 38, 39]]


def test_a_partition_that_moves_or_is_at_its_end_is_left_alone(fake: SimpleNamespace) -> None:
    run_async(agent._catch_up())
    b = fake.guarantee.ledger.batch()
    b.plan((CHECKINS, 1), [33, 34])
    b.settle()  # faust delivered meanwhile
    run_async(agent._catch_up())
    assert fake.applied == []
    fake.guarantee.end = 35  # and nothing after it
    run_async(agent._catch_up())
    assert fake.applied == [] and fake.guarantee.reads == []


def test_nothing_is_read_while_the_group_rebalances(fake: SimpleNamespace) -> None:
    run_async(agent._catch_up())
    fake.app.rebalancing = True
    run_async(agent._catch_up())
    fake.app.rebalancing = False
    run_async(agent._catch_up())  # the rebalance reset what was seen: first sight again
    assert fake.applied == []


def test_a_catch_up_is_at_most_a_batch(fake: SimpleNamespace, monkeypatch: Any) -> None:
    monkeypatch.setattr(settings, "session_batch_size", 3)
    run_async(agent._catch_up())
    run_async(agent._catch_up())
    assert fake.applied == [[33, 34, 35]]
