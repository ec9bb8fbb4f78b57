"""streams.ledger: what the session agent applies and commits, whatever faust delivers."""

from __future__ import annotations

import pytest

from streams.ledger import Ledger

CHECKINS = ("checkins", 2)
CLOCK = ("session-clock", 2)


def ledger(start: int = 100) -> Ledger:
    led = Ledger(gapped_topics=frozenset({"session-clock"}))
    led.start(CHECKINS, start)
    return led


def test_a_contiguous_run_is_applied_and_committed_only_once_settled() -> None:
    led = ledger()
    b = led.batch()
    plan = b.plan(CHECKINS, [100, 101, 102])
    assert plan.apply == [100, 101, 102] and plan.missing == [] and plan.seen == []
    # Not yet durable: the commit stays where the state stood.
    assert led.committable(CHECKINS) == 100
    assert b.advanced() == {CHECKINS: 103}
    b.settle()
    assert led.committable(CHECKINS) == 103


def test_redelivered_offsets_are_seen_not_applied_again() -> None:
    led = ledger()
    plan = led.batch().plan(CHECKINS, [97, 99, 100, 99])
    assert plan.seen == [97, 99] and plan.apply == [100]


def test_offsets_faust_skipped_are_read_and_applied_in_order_before_the_later_ones() -> None:
    # faust skipped 101 and 103 (messages fetched before a rebalance): they are applied in
    # their place, and the commit moves over all of them only once the batch is durable.
    led = ledger()
    b = led.batch()
    plan = b.plan(CHECKINS, [104, 100, 102])
    assert plan.apply == [100, 101, 102, 103, 104]
    assert plan.missing == [101, 103]
    b.settle()
    assert led.committable(CHECKINS) == 105


def test_a_partition_that_starts_behind_its_commit_reads_what_it_never_applied() -> None:
    # The changelog says the state holds up to 50; faust sought to a later committed offset.
    led = ledger(start=50)
    plan = led.batch().plan(CHECKINS, [60, 61])
    assert plan.missing == list(range(50, 60)) and plan.apply == list(range(50, 62))


def test_a_later_batch_continues_from_the_first() -> None:
    led = ledger()
    b1 = led.batch()
    b1.plan(CHECKINS, [100, 101])
    b1.settle()
    b2 = led.batch()
    assert b2.plan(CHECKINS, [101, 102]).apply == [102]
    # Two plans of one partition in a batch continue from each other too.
    assert b2.plan(CHECKINS, [104]).missing == [103]


def test_compacted_topics_may_jump() -> None:
    led = ledger()
    led.start(CLOCK, 5)
    b = led.batch()
    plan = b.plan(CLOCK, [9, 9, 12, 3])
    assert plan.apply == [9, 12] and plan.missing == [] and plan.seen == [3]
    b.settle()
    assert led.committable(CLOCK) == 13


def test_a_partition_with_nothing_saved_or_committed_starts_at_its_first_message() -> None:
    led = Ledger()
    led.start_at_first(CHECKINS)
    assert led.committable(CHECKINS) is None
    b = led.batch()
    plan = b.plan(CHECKINS, [0, 1, 3])
    assert plan.apply == [0, 1, 2, 3] and plan.missing == [2]
    b.settle()
    assert led.committable(CHECKINS) == 4


def test_a_partition_revoked_during_a_batch_is_not_moved_by_it() -> None:
    led = ledger()
    b = led.batch()
    b.plan(CHECKINS, [100])
    led.forget([CHECKINS])
    b.settle()
    assert not led.knows(CHECKINS) and led.committable(CHECKINS) is None


def test_an_unstarted_partition_is_a_bug_not_a_guess() -> None:
    with pytest.raises(KeyError):
        Ledger().batch().plan(CHECKINS, [0])
