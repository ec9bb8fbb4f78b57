"""The clients one API process holds, built in the lifespan and injected into handlers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from services.publisher import Publisher
from services.ratelimit import RateLimiter
from services.reads.registry import MemberHistory
from services.registry import Registry
from services.revocations import RevocationList
from services.sessions import SessionRules
from services.settings import Settings
from services.sink import Sink
from services.warehouse.client import Warehouse


@dataclass
class Limits:
    checkins_member: RateLimiter
    checkins_station: RateLimiter
    token_issue: RateLimiter

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(
            RateLimiter(s.limit_checkins_member_burst, s.limit_checkins_member_per_min / 60),
            RateLimiter(s.limit_checkins_station_burst, s.limit_checkins_station_per_min / 60),
            RateLimiter(s.limit_token_issue_burst, s.limit_token_issue_per_min / 60),
        )


@dataclass
class AppContext:
    settings: Settings
    warehouse: Warehouse
    publisher: Publisher
    registry: Registry
    revocations: RevocationList
    limits: Limits = field(init=False)
    # Late scans of members changed since: their registry history, per record version.
    member_history: MemberHistory = field(init=False)
    # The pairing rules' knobs, for the check-in's back-dated poster rule (services.sessions).
    session_rules: SessionRules = field(init=False)
    sink: Sink | None = None
    sink_thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.limits = Limits.from_settings(self.settings)
        self.member_history = MemberHistory(self.warehouse)
        self.session_rules = SessionRules.from_settings(self.settings)
