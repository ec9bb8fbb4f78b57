"""Moved to `services.reads.engagement` (the read layer); kept so older imports still work."""

from services.reads.engagement import (
    CAMPAIGN_READ,
    CREDITED,
    campaign,
    campaign_summary,
    feedback_summary,
    list_campaigns,
    list_resources,
    list_wishes,
    rejections,
    resource,
    transitions,
    wish,
    wishes_fulfilled,
)

__all__ = [
    "CAMPAIGN_READ",
    "CREDITED",
    "campaign",
    "campaign_summary",
    "feedback_summary",
    "list_campaigns",
    "list_resources",
    "list_wishes",
    "rejections",
    "resource",
    "transitions",
    "wish",
    "wishes_fulfilled",
]
