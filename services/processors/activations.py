"""Activation codes into their table (write-through by the API, and by the sink on replay)."""

from __future__ import annotations

from services import topics
from services.events.activations import ActivationRecorded
from services.processors.base import Route, Row, route


def _activation_row(e: ActivationRecorded) -> Row:
    return (
        e.code_hash,
        e.revision,
        e.member_id,
        e.community_id,
        e.issued_by,
        e.issued_at,
        e.expires_at,
        e.redeemed_at,
    )


ACTIVATIONS = route(
    Route(
        topics.ACTIVATIONS,
        "activations",
        (
            "code_hash",
            "revision",
            "member_id",
            "community_id",
            "issued_by",
            "issued_at",
            "expires_at",
            "redeemed_at",
        ),
        (ActivationRecorded,),
        _activation_row,
    )
)
