"""Judges every wish and resource command in log order (see services.lists for the rules).

The state of an item lives in a changelog-backed table keyed by the item id, partitioned like
the commands topic (same key), so the worker owning a partition owns those items. Accepted
commands emit the item's latest state to its compacted topic; refused ones a rejection record.
Follow-up commands of a project (match the resource, or hand the wish back) go through the
commands topic, so they are ordered with everything else on their own item.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from services import state_format
from services.events import ListCommand, ResourceRecorded, WishRecorded, derived_id, parse_event
from services.lists import ItemState, apply
from services.topics import (
    LIST_COMMANDS,
    LIST_ITEM_TABLE,
    LIST_REJECTIONS,
    LIST_TRANSITIONS,
    RESOURCES,
    WISHES,
)
from streams.app import app, dead_letter_topic, raw_topic, settings
from streams.guarantee import CATCH_UP_S, DropOnce, Guarantee, OneAtATime, applied_key

log = logging.getLogger(__name__)


commands_topic = raw_topic(LIST_COMMANDS)
wishes_topic = raw_topic(WISHES)
resources_topic = raw_topic(RESOURCES)
rejections_topic = raw_topic(LIST_REJECTIONS)
transitions_topic = raw_topic(LIST_TRANSITIONS)

item_state = app.Table(
    LIST_ITEM_TABLE,
    default=None,
    key_type=str,
    value_type=str,
    partitions=LIST_COMMANDS.partitions,
)
GUARANTEE = Guarantee(
    app,
    {settings.topic(LIST_COMMANDS.name)},
    lambda p: item_state.get(applied_key(p)),
    settings.kafka_bootstrap,
    prefix=settings.topic_prefix,
)


@app.agent(commands_topic)
async def judge_list_commands(stream: Any) -> AsyncIterator[None]:
    async for _ in COMMANDS.loop(stream):
        yield None


@app.timer(interval=CATCH_UP_S)  # type: ignore[untyped-decorator]
async def catch_up_lists() -> None:
    await COMMANDS.catch_up()


async def _judge(event: Any) -> None:
    raw: bytes = event.value
    try:
        cmd = parse_event(raw)
        if not isinstance(cmd, ListCommand):
            raise ValueError(f"unexpected event type {cmd.event_type} on {LIST_COMMANDS.name}")
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        await dead_letter_topic.send(
            key=event.key,
            value=raw,
            headers={"reason": str(exc)[:2000].encode(), "source": b"judge_list_commands"},
        )
        return
    stored = item_state.get(cmd.item_id)
    state = state_format.load_item(stored) if stored else ItemState()
    out = apply(state, cmd)
    if out.duplicate:
        return
    if out.changed:
        # In the format every worker of the group reads (STATE_WRITE_VERSION, docs/upgrades.md).
        item_state[cmd.item_id] = state_format.dump_item(out.state, settings.state_write_version)
        if out.state.wish is not None and cmd.item_kind == "wish":
            w = out.state.wish
            rec_w = WishRecorded(
                event_id=derived_id("wish.recorded", w.wish_id, str(w.revision)),
                occurred_at=w.updated_at,
                wish=w,
            )
            await wishes_topic.send(key=w.wish_id.encode(), value=rec_w.to_bytes())
        if out.state.resource is not None and cmd.item_kind == "resource":
            r = out.state.resource
            rec_r = ResourceRecorded(
                event_id=derived_id("resource.recorded", r.resource_id, str(r.revision)),
                occurred_at=r.updated_at,
                resource=r,
            )
            await resources_topic.send(key=r.resource_id.encode(), value=rec_r.to_bytes())
    applied = out.applied(cmd)
    if applied is not None:
        await transitions_topic.send(key=cmd.item_id.encode(), value=applied.to_bytes())
    rejection = out.rejection(cmd)
    if rejection is not None:
        log.info("refused %s %s: %s", cmd.action, cmd.item_id, rejection.reason)
        await rejections_topic.send(key=cmd.item_id.encode(), value=rejection.to_bytes())
    for f in out.follow_ups:
        await commands_topic.send(key=f.item_id.encode(), value=f.to_bytes())


COMMANDS = OneAtATime(
    GUARANTEE,
    item_state,
    _judge,
    DropOnce(settings.command_fault_skip, settings.topic_prefix),
)
