"""The base of every event, and the table of event types that `parse_event` dispatches on.

Each domain module defines its events and registers them with `@event_type`; the package
`__init__` imports every domain module, so one `parse_event` knows every type.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict

# Namespace for ids derived from other ids (uuid5), fixed forever: changing it would re-key
# every derived id and break idempotency against data already stored.
ID_NAMESPACE = uuid.UUID("6f1c2d7e-4b5a-4c3e-9d2f-1a8b7c6d5e4f")


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)))


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a time zone offset")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """`event_type` is a Literal default on each subclass; `schema_version` bumps on a breaking change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    event_type: str
    schema_version: int = 1
    occurred_at: UtcDatetime

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


E = TypeVar("E", bound=Event)

EVENT_TYPES: dict[str, type[Event]] = {}


def event_type(cls: type[E]) -> type[E]:
    """Registers an event class under its `event_type` literal."""
    name = cls.model_fields["event_type"].default
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a default event_type")
    if name in EVENT_TYPES:
        raise TypeError(f"event type {name!r} registered twice")
    EVENT_TYPES[name] = cls
    return cls


class UnknownEventType(ValueError):
    pass


def parse_event(raw: bytes | str) -> Event:
    """Decode one message; raises ValueError (pydantic's ValidationError is one) naming the problem."""
    try:
        data: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnknownEventType(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UnknownEventType("an event is a JSON object")
    name = data.get("event_type")
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise UnknownEventType(f"unknown event_type {name!r}")
    return cls.model_validate(data)
