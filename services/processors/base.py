"""The shape of a processor: a topic's route to one table, and the one function the sink calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services.events import Event, UnknownEventType, parse_event
from services.topics import TopicSpec

Row = tuple[Any, ...]


class InvalidMessage(ValueError):
    pass


@dataclass(frozen=True)
class Route:
    """Messages of `event_types` on `topic` become rows of `table` with `columns`."""

    topic: TopicSpec
    table: str
    columns: tuple[str, ...]
    event_types: tuple[type[Event], ...]
    to_row: Callable[[Any], Row]
    # The row ends with the message's Kafka partition and offset (the last two columns): the
    # sink sets them with `at_position`; `process` alone, which sees no message, leaves -1.
    positioned: bool = False


UNKNOWN_POSITION = (-1, -1)


def at_position(row: Row, partition: int, offset: int) -> Row:
    """A positioned route's row with the message's place in the log."""
    return (*row[: -len(UNKNOWN_POSITION)], partition, offset)


ROUTES: dict[str, Route] = {}


def route(r: Route) -> Route:
    if r.topic.name in ROUTES:
        raise ValueError(f"topic {r.topic.name!r} routed twice")
    ROUTES[r.topic.name] = r
    return r


def route_for_event(event: Event) -> Route:
    for r in ROUTES.values():
        if isinstance(event, r.event_types):
            return r
    raise InvalidMessage(f"no table for event type {event.event_type}")


def process(topic: str, raw: bytes | None) -> tuple[Route, Row]:
    """One message to one row. `topic` is the declared name, without the deployment's prefix."""
    r = ROUTES.get(topic)
    if r is None:
        raise InvalidMessage(f"no route for topic {topic!r}")
    if raw is None:
        raise InvalidMessage("empty message (tombstone) on a topic that keeps every version")
    try:
        event = parse_event(raw)
    except ValidationError as exc:
        raise InvalidMessage(f"invalid event: {exc.errors(include_url=False)}") from exc
    except UnknownEventType as exc:
        raise InvalidMessage(f"invalid event: {exc}") from exc
    if not isinstance(event, r.event_types):
        raise InvalidMessage(f"event type {event.event_type} does not belong on topic {topic!r}")
    row = r.to_row(event)
    return r, (*row, *UNKNOWN_POSITION) if r.positioned else row
