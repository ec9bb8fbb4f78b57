"""The clients one API process holds, built in the lifespan and injected into handlers."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.publisher import Publisher
from services.ratelimit import RateLimiter
from services.reads.registry import MemberHistory, MemberThen
from services.registry import CheckinRefs, CheckinReplica, Registry
from services.revocations import RevocationList
from services.sessions import SessionRules
from services.settings import Settings
from services.sink import Sink
from services.warehouse.client import Warehouse


class Revocations(Protocol):
    """Whether a token was withdrawn: `services.revocations.RevocationList` (from ClickHouse)
    in the reads process, `services.edge_feed.RevokedTokens` (from Kafka) on an edge."""

    def check_nowait(self, token_id: str) -> bool | None: ...

    def is_revoked(self, token_id: str) -> bool: ...


class History(Protocol):
    """A member as they stood at an instant (`services.reads.registry.member_then`): read from
    ClickHouse in the reads process, from `registry.history` on an edge."""

    def at(self, now: MemberThen, member_id: str, version: int, at: datetime) -> MemberThen: ...


class AuthContext(Protocol):
    """What authenticating a bearer token needs (api.deps.authenticate)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def revocations(self) -> Revocations: ...


class ScanContext(AuthContext, Protocol):
    """What the check-in route needs: the reads process's `AppContext` and an edge's
    `api.edge.EdgeContext` both provide it, so one route serves both."""

    @property
    def publisher(self) -> Publisher: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def session_rules(self) -> SessionRules: ...

    @property
    def replica(self) -> CheckinReplica: ...

    @property
    def member_history(self) -> History: ...

    async def checkin_refs(self, station_id: str, member_id: str) -> CheckinRefs:
        """The station, member and grid when the replica has no answer; raises NotFound."""
        ...


@dataclass
class Limits:
    checkins_member: RateLimiter
    checkins_station: RateLimiter
    token_issue: RateLimiter
    kiosk_search: RateLimiter

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(
            RateLimiter(s.limit_checkins_member_burst, s.limit_checkins_member_per_min / 60),
            RateLimiter(s.limit_checkins_station_burst, s.limit_checkins_station_per_min / 60),
            RateLimiter(s.limit_token_issue_burst, s.limit_token_issue_per_min / 60),
            RateLimiter(s.limit_kiosk_search_burst, s.limit_kiosk_search_per_min / 60),
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

    @property
    def replica(self) -> CheckinReplica:
        return self.registry.replica

    async def checkin_refs(self, station_id: str, member_id: str) -> CheckinRefs:
        # The database (one thread hop, batched with concurrent misses), e.g. for a member
        # created a moment ago through another API process.
        return await asyncio.to_thread(self.registry.checkin_refs, station_id, member_id)
