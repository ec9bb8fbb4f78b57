"""Standing posts (岗位认领), folded from the `post_events` table with `services.posts`."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from services.posts import Post, Step, fold
from services.reads._rows import utc
from services.warehouse.client import Warehouse

_COLUMNS = (
    "post_id, event_id, action, occurred_at, member_id, reason, actor_role, actor_id, "
    "community_id, grid_id, kind, title, description"
)


def _posts(rows: list[tuple[Any, ...]]) -> list[Post]:
    steps: dict[str, list[Step]] = defaultdict(list)
    for r in rows:
        steps[str(r[0])].append(
            Step(
                event_id=str(r[1]),
                action=str(r[2]),
                occurred_at=utc(r[3]) or r[3],
                member_id=str(r[4]),
                reason=str(r[5]),
                actor=f"{r[6]}:{r[7]}",
                community_id=str(r[8]),
                grid_id=str(r[9]),
                kind=str(r[10]),
                title=str(r[11]),
                description=str(r[12]),
            )
        )
    posts = [fold(pid, ss) for pid, ss in steps.items()]
    return [p for p in posts if p.exists]


def post(wh: Warehouse, post_id: str) -> Post | None:
    rows = wh.query(
        f"SELECT {_COLUMNS} FROM post_events FINAL WHERE post_id = %(p)s", {"p": post_id}
    )
    found = _posts(rows)
    return found[0] if found else None


def posts(
    wh: Warehouse, *, community_id: str | None = None, member_id: str | None = None
) -> list[Post]:
    """A community's posts, or the posts a member holds or claimed (wherever), or every post."""
    if member_id is not None:
        where = (
            "post_id IN (SELECT DISTINCT post_id FROM post_events FINAL WHERE member_id = %(m)s)"
        )
    elif community_id is not None:
        where = "community_id = %(c)s"
    else:
        where = "1"
    rows = wh.query(
        f"SELECT {_COLUMNS} FROM post_events FINAL WHERE {where}",
        {"c": community_id, "m": member_id},
    )
    return _posts(rows)
