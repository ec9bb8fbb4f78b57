"""Revoked tokens, assessment rule versions and issued records of service into their tables."""

from __future__ import annotations

from services import topics
from services.events import AssessmentRulesPublished, ServiceRecordIssued, TokenRevoked
from services.processors.base import Route, route

REVOCATIONS = route(
    Route(
        topics.REVOCATIONS,
        "revoked_tokens",
        ("token_id", "role", "subject_id", "expires_at", "revoked_by", "revoked_at"),
        (TokenRevoked,),
        lambda e: (e.token_id, e.role, e.subject_id, e.expires_at, e.revoked_by, e.occurred_at),
    )
)

SERVICE_RECORDS = route(
    Route(
        topics.SERVICE_RECORDS,
        "service_records",
        ("code", "member_id", "payload", "issued_at"),
        (ServiceRecordIssued,),
        lambda e: (e.code, e.member_id, e.model_dump_json(), e.occurred_at),
    )
)

ASSESSMENT_RULES = route(
    Route(
        topics.ASSESSMENT_RULES,
        "assessment_rules",
        ("version", "rules", "created_by", "created_at"),
        (AssessmentRulesPublished,),
        lambda e: (e.version, e.rules, e.created_by, e.occurred_at),
    )
)
