"""streams.ledger: what the session agent applies and commits, whatever faust delivers."""

from __future__ import annotations

import pytest

from streams.ledger import Ledger, Verdict

CHECKINS = ("checkins", 2)
CLOCK = ("session-clock", 2)


def ledger(start: int = 100) -> Ledger:
    led = Ledger(gapped_topics=frozenset({"session-clock"}), reseek_after_s=2.0)
    led.start(CHECKINS, start)
    return led


def test_a_contiguous_run_is_applied_and_committed_only_once_settled() -> None:
    led = ledger()
    b = led.batch()
    assert [b.verdict(CHECKINS, o) for o in (100, 101, 102)] == [Verdict.APPLY] * 3
    # Not yet durable: the commit stays where the state stood.
    assert led.committable(CHECKINS) == 100
    assert b.advanced() == {CHECKINS: 103}
    b.settle()
    assert led.committable(CHECKINS) == 103


def test_redelivered_offsets_are_seen_not_applied_again() -> None:
    led = ledger()
    b = led.batch()
    assert [b.verdict(CHECKINS, o) for o in (97, 99, 100)] == [
        Verdict.SEEN,
        Verdict.SEEN,
        Verdict.APPLY,
    ]


def test_a_skipped_offset_stops_the_run_and_asks_for_a_seek_back() -> None:
    # faust skipped 101 (a message fetched before a rebalance): 102 and 103 must not be applied
    # before it, and the commit must not pass it.
    led = ledger()
    b = led.batch()
    verdicts = [b.verdict(CHECKINS, o) for o in (100, 102, 103)]
    assert verdicts == [Verdict.APPLY, Verdict.HOLE, Verdict.HOLE]
    assert b.seeks(now=10.0) == {CHECKINS: 101}
    b.sought({CHECKINS: 101}, now=10.0)
    b.settle()
    assert led.committable(CHECKINS) == 101

    # Messages fetched before the seek still arrive: no second seek for the same offset at once.
    b2 = led.batch()
    assert b2.verdict(CHECKINS, 104) is Verdict.HOLE
    assert b2.seeks(now=11.0) == {}
    # ... but again if the offsets asked for never came.
    assert b2.seeks(now=12.5) == {CHECKINS: 101}

    # The skipped offset comes again: the run goes on from it, and the hole is closed.
    b3 = led.batch()
    assert [b3.verdict(CHECKINS, o) for o in (105, 101, 102, 103)] == [
        Verdict.HOLE,
        Verdict.APPLY,
        Verdict.APPLY,
        Verdict.APPLY,
    ]
    assert b3.seeks(now=20.0) == {}
    b3.settle()
    assert led.committable(CHECKINS) == 104


def test_compacted_topics_may_jump() -> None:
    led = ledger()
    led.start(CLOCK, 5)
    b = led.batch()
    assert [b.verdict(CLOCK, o) for o in (9, 9, 12)] == [Verdict.APPLY, Verdict.SEEN, Verdict.APPLY]
    b.settle()
    assert led.committable(CLOCK) == 13


def test_a_partition_with_nothing_saved_or_committed_starts_at_its_first_message() -> None:
    led = Ledger()
    led.start_at_first(CHECKINS)
    assert led.committable(CHECKINS) is None
    b = led.batch()
    assert [b.verdict(CHECKINS, o) for o in (0, 1, 3)] == [
        Verdict.APPLY,
        Verdict.APPLY,
        Verdict.HOLE,
    ]
    b.settle()
    assert led.committable(CHECKINS) == 2


def test_a_partition_revoked_during_a_batch_is_not_moved_by_it() -> None:
    led = ledger()
    b = led.batch()
    b.verdict(CHECKINS, 100)
    led.forget([CHECKINS])
    b.settle()
    assert not led.knows(CHECKINS) and led.committable(CHECKINS) is None


def test_an_unstarted_partition_is_a_bug_not_a_guess() -> None:
    with pytest.raises(KeyError):
        Ledger().batch().verdict(CHECKINS, 0)
