"""A new version of the assessment rules, published by the admin."""

from __future__ import annotations

from typing import Literal

from services.events.base import Event, event_type


@event_type
class AssessmentRulesPublished(Event):
    event_type: Literal["assessment_rules.published"] = "assessment_rules.published"
    version: int
    # The rules as JSON (services.assessment.AssessmentRules), stored verbatim so the version
    # that graded a member can be shown exactly as it was.
    rules: str
    created_by: str
