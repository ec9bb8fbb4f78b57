"""Moved to `services.reads.assessment` (the read layer); kept so older imports still work."""

from services.reads.assessment import (
    AssessmentItem,
    all_items,
    count_members,
    page,
    rules_json,
    rules_versions,
)

__all__ = ["AssessmentItem", "all_items", "count_members", "page", "rules_json", "rules_versions"]
