"""Reads of personal data into the access log."""

from __future__ import annotations

from services import topics
from services.events import PersonalDataRead
from services.processors.base import Route, route

ACCESS_LOG = route(
    Route(
        topics.ACCESS_LOG,
        "access_log",
        ("event_id", "kind", "actor_role", "actor_id", "member_ids", "route", "detail", "at"),
        (PersonalDataRead,),
        lambda e: (
            e.event_id,
            e.kind,
            e.actor_role,
            e.actor_id,
            e.member_ids,
            e.route,
            e.detail,
            e.occurred_at,
        ),
    )
)
