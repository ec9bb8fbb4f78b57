"""Service slots into their tables: each activity's latest state, each member's latest sign-up,
and the commands the activities agent refused."""

from __future__ import annotations

from services import topics
from services.events import (
    ActivityCommandRejected,
    ActivityFields,
    ActivityRecorded,
    SignupFields,
    SignupRecorded,
)
from services.processors.base import Route, Row, route

# The state tables' columns are exactly the state models' fields.
ACTIVITY_COLUMNS = tuple(ActivityFields.model_fields)
SIGNUP_COLUMNS = (*SignupFields.model_fields, "command_event_id")
REJECTION_COLUMNS = (
    "event_id",
    "command_event_id",
    "activity_id",
    "action",
    "actor_role",
    "actor_id",
    "member_id",
    "code",
    "reason",
    "occurred_at",
)


def activity_row(e: ActivityRecorded) -> Row:
    a = e.activity
    return tuple(
        list(v) if isinstance(v, tuple) else v for v in (getattr(a, c) for c in ACTIVITY_COLUMNS)
    )


def signup_row(e: SignupRecorded) -> Row:
    return (*(getattr(e.signup, c) for c in SignupFields.model_fields), e.command_event_id)


def rejection_row(e: ActivityCommandRejected) -> Row:
    return tuple(getattr(e, c) for c in REJECTION_COLUMNS)


ACTIVITIES = route(
    Route(topics.ACTIVITIES, "activities", ACTIVITY_COLUMNS, (ActivityRecorded,), activity_row)
)
SIGNUPS = route(
    Route(
        topics.ACTIVITY_SIGNUPS, "activity_signups", SIGNUP_COLUMNS, (SignupRecorded,), signup_row
    )
)
REJECTIONS = route(
    Route(
        topics.ACTIVITY_REJECTIONS,
        "activity_rejections",
        REJECTION_COLUMNS,
        (ActivityCommandRejected,),
        rejection_row,
    )
)
