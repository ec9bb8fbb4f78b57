"""Standing posts (岗位认领): a post's life folded from its events, and races decided the same
way by every reader."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.demo.county import generate
from services.posts import Post, PostRefused, Step, apply, fold

T = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def _s(n: int, action: str, member: str = "", eid: str | None = None) -> Step:
    return Step(
        event_id=eid or f"e{n:03d}",
        action=action,
        occurred_at=T + timedelta(seconds=n),
        member_id=member,
        actor="organizer:c1" if action in ("create", "approve", "decline", "end") else member,
        community_id="c1",
        grid_id="g5",
        kind="unit_post",
        title="3号楼2单元党员责任岗",
    )


def test_claim_approve_leave() -> None:
    p = fold("p1", [_s(0, "create"), _s(1, "claim", "m1"), _s(2, "claim", "m2")])
    assert p.status == "open" and p.pending == ("m1", "m2")
    p = apply(p, _s(3, "approve", "m2"))
    # The other claim is answered, not left waiting.
    assert (p.status, p.holder_id, p.pending) == ("held", "m2", ())
    assert [(h.action, h.member_id) for h in p.history[-2:]] == [
        ("approve", "m2"),
        ("decline", "m1"),
    ]
    p = apply(p, _s(4, "leave", "m2"))
    assert (p.status, p.holder_id) == ("open", None)
    assert p.history[-1].member_id == "m2"


def test_the_organizer_ends_a_holding() -> None:
    p = fold("p1", [_s(0, "create"), _s(1, "claim", "m1"), _s(2, "approve", "m1"), _s(3, "end")])
    assert p.status == "open" and p.history[-1].action == "end" and p.history[-1].member_id == "m1"


@pytest.mark.parametrize(
    ("steps", "step", "code"),
    [
        ([], _s(1, "claim", "m1"), "post_not_found"),
        ([_s(0, "create")], _s(1, "create"), "post_exists"),
        ([_s(0, "create"), _s(1, "claim", "m1")], _s(2, "claim", "m1"), "post_claim_pending"),
        ([_s(0, "create")], _s(2, "approve", "m1"), "no_post_claim"),
        ([_s(0, "create")], _s(2, "leave", "m1"), "not_post_holder"),
        (
            [_s(0, "create"), _s(1, "claim", "m1"), _s(2, "approve", "m1")],
            _s(3, "claim", "m2"),
            "post_taken",
        ),
        (
            [_s(0, "create"), _s(1, "claim", "m1"), _s(2, "approve", "m1")],
            _s(3, "claim", "m1"),
            "post_already_held",
        ),
        (
            [_s(0, "create"), _s(1, "claim", "m1"), _s(2, "approve", "m1")],
            _s(3, "leave", "m2"),
            "not_post_holder",
        ),
    ],
)
def test_refusals(steps: list[Step], step: Step, code: str) -> None:
    with pytest.raises(PostRefused) as refused:
        apply(fold("p1", steps), step)
    assert refused.value.code == code


def test_a_race_is_decided_by_time_whatever_the_order_read() -> None:
    # Two organizers' tabs approve two claims a moment apart: the first holds the post, the
    # second changes nothing, however the rows come back from the warehouse.
    steps = [
        _s(0, "create"),
        _s(1, "claim", "m1"),
        _s(2, "claim", "m2"),
        _s(4, "approve", "m2"),
        _s(3, "approve", "m1"),
    ]
    a = fold("p1", steps)
    b = fold("p1", list(reversed(steps)))
    assert a == b and a.holder_id == "m1"


def test_a_post_that_was_never_created_does_not_exist() -> None:
    assert not fold("p1", [_s(1, "claim", "m1")]).exists
    assert not Post("p1").exists


def test_the_demo_county_has_the_case_s_posts_on_level5_grids_most_claimed() -> None:
    county = generate()
    assert Counter(p.kind for p in county.posts) == {"unit_post": 484, "building_group": 140}
    grids = {g.key: g for g in county.grids}
    members = {m.key: m for m in county.members}
    for p in county.posts:
        g = grids[p.grid_key]
        assert g.level == 5 and g.community_key == p.community_key
        if p.holder_key:
            assert members[p.holder_key].community_key == p.community_key
    holders = [p.holder_key for p in county.posts if p.holder_key]
    assert len(holders) == len(set(holders)), "one post per member"
    assert 0.75 < len(holders) / len(county.posts) < 0.95
    # Titles are unique within a community (the loader matches posts by them).
    assert len({(p.community_key, p.title) for p in county.posts}) == len(county.posts)
    assert generate().fingerprint() == county.fingerprint()
