"""Message processors for the sink: pure functions from one Kafka message to warehouse rows.

Each topic has one route: the event types it may carry, the table and the row. A message that
does not parse, or carries a type its topic must not carry, raises `InvalidMessage` and goes to
the dead-letter topic with the reason. One module per domain registers its routes on import.
"""

from services.processors import activations as activations
from services.processors import activities as activities
from services.processors import auth as auth
from services.processors import checkins, registry
from services.processors import engagement as engagement
from services.processors import leave as leave
from services.processors import notifications as notifications
from services.processors import privacy as privacy
from services.processors import rosters as rosters
from services.processors import slot_weeks as slot_weeks
from services.processors.base import (
    ROUTES,
    InvalidMessage,
    Route,
    Row,
    at_position,
    process,
    route_for_event,
)

__all__ = [
    "ROUTES",
    "InvalidMessage",
    "Route",
    "Row",
    "at_position",
    "checkins",
    "process",
    "registry",
    "route_for_event",
]
