"""The one place that reads the environment."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.net import parse_networks

DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_SECRET_KEY = "dev-secret-key-change-me-in-production-0000"


class Settings(BaseSettings):
    # A refusal at start-up is logged: it must not print the secrets it was given.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    # Where everything local lives: chDB data, the broker's storage, logs.
    data_dir: Path = Path("data")

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The address printed on QR posters: what a phone opens after scanning.
    public_url: str = ""

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_bootstrap: str = ""
    # Prefix on every topic and consumer group, so several deployments (or test runs) can share
    # a cluster without reading each other's data.
    topic_prefix: str = ""
    # A publish waits this long for acks=all before the API answers 503; the contract says a
    # check-in with Kafka down fails within 2 s.
    publish_timeout_s: float = 1.5

    clickhouse_dsn: str = ""
    clickhouse_database: str = "volunteer"
    # A ClickHouse cluster (its name in the servers' remote_servers): the migrations create
    # replicated local tables and Distributed tables over them (services.warehouse.cluster).
    # Empty: one server, or embedded chDB.
    clickhouse_cluster: str = Field(default="", pattern=r"^\w*$")

    admin_token: str = DEV_ADMIN_TOKEN
    # Signs station QR tokens and bearer tokens. The defaults above are public (they are in
    # this file): every start-up refuses them, and any secret under 32 bytes, unless
    # ALLOW_DEV_SECRETS is set (secret_problems). `make run` generates real ones in DATA_DIR.
    secret_key: str = DEV_SECRET_KEY
    allow_dev_secrets: bool = False
    # Keys rotate by version (services.tokens derives one per purpose and version): the current
    # version signs; older ones verify until their grace end (UTC), after which, or when no
    # grace end is set, they are refused. Posters need weeks to be reprinted, phone tokens
    # expire on their own: the two rotate apart.
    station_key_version: int = Field(default=1, ge=1, le=9999)
    station_key_grace_until: datetime | None = None
    bearer_key_version: int = Field(default=1, ge=1, le=9999)
    bearer_key_grace_until: datetime | None = None
    token_ttl_s: int = 30 * 24 * 3600

    # How far in the past a queued offline scan may lie, and the clock skew tolerated ahead.
    max_scan_age_h: float = 72.0
    max_clock_skew_s: float = 120.0

    # How often each API process re-reads the registry changes made through other processes
    # into its in-memory check-in replica (services.registry.CheckinReplica): a member set to
    # inactive, moved or added through another API process is seen by this one's check-ins
    # within about this long (through this process: at once). If refreshing fails, the replica
    # is not used after max(5 s, 5 x this) and check-ins read the database instead.
    registry_refresh_s: float = Field(default=1.0, gt=0, le=60)

    # Rate limits (token buckets per API process): a burst, then a steady rate per minute.
    # A member scans a few times per service; a station door sees a queue at most.
    limit_checkins_member_burst: int = 10
    limit_checkins_member_per_min: float = 6
    limit_checkins_station_burst: int = 300
    limit_checkins_station_per_min: float = 600
    limit_token_issue_burst: int = 30
    limit_token_issue_per_min: float = 60
    # Member searches from a station's tablet (kiosk, 代签到), per screen key: an operator
    # checking in a queue of elderly members searches a few times a minute; a leaked key must
    # not page through the community's members (revoking the key stops it for good).
    limit_kiosk_search_burst: int = 20
    limit_kiosk_search_per_min: float = 10

    # The sink's batch bounds: whichever comes first.
    sink_batch_size: int = 5000
    sink_batch_ms: int = 500
    # "embedded": the API process runs the sink (chDB allows one process per data folder).
    # "external": the sink runs as its own command (server DSN, scaled out).
    sink_mode: str = Field(default="", description="embedded | external; default by DSN")

    # Faust worker
    worker_web_port: int = 6066

    # Operations (issue 7): "text" for humans, "json" for one JSON object per line.
    log_format: str = Field(default="text", pattern="^(text|json)$")
    # The largest request body of a route that is neither a check-in (16 KB) nor an import
    # (IMPORT_MAX_BYTES): 413 before the route parses or authenticates anything.
    body_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Who may read /metrics: "loopback" (a scraper on this host), "token" (Bearer METRICS_TOKEN)
    # or "open". It names routes, refusal reasons and volumes: not for strangers.
    metrics_access: str = Field(default="loopback", pattern="^(loopback|token|open)$")
    metrics_token: str = ""

    @model_validator(mode="after")
    def _metrics_token_when_asked(self) -> Settings:
        if self.metrics_access == "token" and len(self.metrics_token) < 16:
            raise ValueError("METRICS_ACCESS=token needs METRICS_TOKEN of 16 characters or more")
        return self

    # The standalone sink (`python -m services.sink`) serves Prometheus metrics on this port
    # (0 = off); the API serves them at /metrics, the worker on its web port at /metrics.
    sink_metrics_port: int = Field(default=0, ge=0, le=65535)
    # Where the worker's web port and the standalone sink's metrics listen: loopback for a
    # developer's machine, 0.0.0.0 in a container so Prometheus can scrape them.
    metrics_host: str = "127.0.0.1"
    # How often the sink asks the broker for end offsets to publish its lag.
    sink_lag_interval_s: float = Field(default=10.0, gt=0)

    # The reconciliation of raw scans against sessions (services.reconcile), run where the
    # sink runs: every RECONCILE_INTERVAL_S (0 = off), over scans received in the last
    # RECONCILE_LOOKBACK_H. A scan is due once the session agent's committed offset passed it
    # at least RECONCILE_SETTLE_S ago (the time its session record needs to reach ClickHouse),
    # so a worker that is merely behind is not an alarm. At most RECONCILE_REPORT_LIMIT
    # unaccounted scans are listed per run (all are counted).
    reconcile_interval_s: float = Field(default=60.0, ge=0)
    reconcile_settle_s: float = Field(default=120.0, ge=0)
    reconcile_lookback_h: float = Field(default=48.0, gt=0)
    reconcile_report_limit: int = Field(default=100, ge=1, le=10_000)

    # FAULT INJECTION, for the drills (bench/drills) only; off by default, never set in
    # production. After the n-th acknowledged insert the sink exits the process (os._exit(137))
    # before committing, like a SIGKILL between insert and commit.
    sink_fault_after_insert: int = Field(default=0, ge=0)
    # FAULT INJECTION: once the sink has made SINK_FAULT_INSERTS_DOWN_AFTER acknowledged
    # inserts, every insert fails for SINK_FAULT_INSERTS_DOWN_S seconds (ClickHouse unavailable).
    sink_fault_inserts_down_s: float = Field(default=0.0, ge=0)
    sink_fault_inserts_down_after: int = Field(default=1, ge=0)

    # Session rules (services.sessions.SessionRules). A second identical scan this soon is ignored.
    session_repeat_window_s: float = Field(default=120.0, ge=0)
    # A longer session is credited this many hours and flagged for review.
    session_cap_h: float = Field(default=8.0, gt=0)
    # A session still open this long after the end of its local day is closed at midnight as a
    # forgotten check-out (the grace lets a 23:00-01:00 night duty count), credited
    # SESSION_FORGOTTEN_CREDIT_H and flagged for the organizer.
    session_forgotten_grace_h: float = Field(default=4.0, ge=0, le=24)
    session_forgotten_credit_h: float = Field(default=0.0, ge=0, le=24)
    # A session counts as a service toward the week (the weekly target, sessions counted, active
    # weeks) only when credited at least this many minutes, or once an organizer approved or
    # adjusted it: a check-in and check-out minutes apart is a gesture, not a service. 0 = off.
    week_min_credited_min: float = Field(default=30.0, ge=0, le=24 * 60)
    # The roll-ups' "lapsed" (issue 15): a registered member with no counted service in this
    # many weeks up to and including the week shown.
    lapsed_weeks: int = Field(default=4, ge=1, le=52)
    # How far back a member's scans are kept to re-pair sessions when a late offline scan
    # arrives; must exceed MAX_SCAN_AGE_H plus a day.
    session_rederive_horizon_h: float = Field(default=96.0, gt=0)
    # How long after its start a session stays reviewable by its organizer.
    session_review_window_days: int = Field(default=60, ge=1)
    # How often a worker ticks the session clock (closes forgotten check-outs without a scan).
    session_tick_s: float = Field(default=30.0, gt=0)
    # The session agent takes up to this many events, or what came within this many seconds,
    # and saves each touched member's state once per batch (one changelog record, not one per
    # scan) and publishes only each session's and week's latest record.
    session_batch_size: int = Field(default=1000, ge=1)
    session_batch_within_s: float = Field(default=0.1, gt=0)
    # Members whose parsed state a worker keeps beside the table (least recently used go).
    # Unbounded, 100,000 members' parsed states were ~6 M objects for Python's garbage
    # collector: full collections of seconds stalled the worker past its session timeout
    # (the million-scan drill). Above it a state is parsed again from the table's bytes.
    # A parsed state of a month's services is ~40 KB of Python objects: 20,000 of them were
    # 840 MB of the worker's 1.5 GB at 100,000 members (bench/state.py); 5,000 keep a
    # benchmark's or a busy morning's members and leave the rest to the store (issue 16).
    session_state_cache: int = Field(default=5_000, ge=0)
    # A worker told to stop (SIGTERM, SIGINT) exits within this many seconds even when its
    # shutdown cannot finish: with the broker gone, faust waits a minute for its consumer
    # thread and up to its producer's request timeout (20 min) flushing (streams/faust_fixes.py).
    worker_stop_timeout_s: float = Field(default=25.0, gt=0, le=300)
    # The format version of the worker's state (member states, partition index, list items)
    # that this worker writes; it reads this one and the two before it (services/state_format.py,
    # docs/upgrades.md). The previous version until every worker runs this release, so a worker
    # of the previous release can read whatever a partition's new owner wrote.
    state_write_version: int = Field(default=3, ge=3, le=4)
    # Where the workers keep their tables between changelog records (issue 16): `rocksdb`
    # (faust's RocksDB store through rocksdict, under DATA_DIR/faust, one database per table
    # and partition; a restart on the same DATA_DIR reads only the changelog's tail) or
    # `memory` (the Python heap, rebuilt from the changelog at every start). rocksdb keeps a
    # million members' states off the heap (bench/findings.md, section 6). (It was opt-in for
    # a round: the rebalance-guarantee test failed with it once in three runs. The cause was
    # not the store, the memory store fails the same way: a partition with nothing committed
    # was started at the first message faust delivered, streams/guarantee.py. The test runs
    # with both stores since.)
    state_store: Literal["memory", "rocksdb"] = "rocksdb"
    # FAULT INJECTION, for tests and drills only; off by default, never set in production.
    # SESSION_FAULT_SKIP: comma-separated `topic:partition:offset` (partition `*` for any): the
    # session agent drops the first delivery of each such message as faust's streams do with a
    # message fetched before a rebalance, so the ledger's hole-and-seek path is exercised.
    session_fault_skip: str = Field(default="", pattern=r"^([\w.-]+:(\d+|\*):\d+(,|$))*$")
    # SESSION_FAULT_HOLD_FILE: while this file exists, every batch waits (at most
    # SESSION_FAULT_HOLD_S) between applying its events and sending its records, so a test can
    # rebalance the group while a batch is in flight.
    session_fault_hold_file: str = ""
    session_fault_hold_s: float = Field(default=60.0, ge=0, le=600)
    # COMMAND_FAULT_SKIP: the same as SESSION_FAULT_SKIP for the command agents (activities,
    # lists; streams/guarantee.py `OneAtATime`), so their catch-up of a partition's tail is
    # exercised.
    command_fault_skip: str = Field(default="", pattern=r"^([\w.-]+:(\d+|\*):\d+(,|$))*$")

    # The largest member spreadsheet an import accepts (HTTP 413 above it).
    import_max_bytes: int = 50 * 1024 * 1024

    # Station screens (services.station_codes): the rotating QR code changes every window; a
    # code stays valid this long after its window ended, so a member who scanned just before
    # the change still gets in, but a photo of the screen is useless a minute later.
    station_code_window_s: int = Field(default=30, ge=1)
    station_code_grace_s: int = Field(default=30, ge=0)
    # How long an organizer-issued screen key (the tablet's credential) is valid. A key lets its
    # holder read the live code from anywhere, so it lives a month (like a bearer token), not a
    # year; the organizer re-issues it with one tap and can revoke a station's keys at once.
    screen_key_ttl_s: int = 30 * 24 * 3600
    # A poster scan (the printed, never-changing token) dated more than this before it reached
    # the server is back-dated: flagged for the organizer's review, or refused where the station
    # says so (services.sessions.backdated_poster). A phone online sends a scan within seconds;
    # five minutes covers a weak signal and retries, not a claim made from home hours later.
    poster_backdate_s: int = Field(default=300, ge=1)
    # Phone binding: an activation code is single use and expires; the member token it yields
    # lives long, because a member scans weekly and should not be asked to re-bind monthly.
    activation_ttl_s: int = 7 * 24 * 3600
    phone_token_ttl_s: int = 180 * 24 * 3600
    # Failed redemptions tolerated per client address in the window (HTTP 429 beyond); per
    # code and per member (a used or expired code tried again, whatever the address); and in
    # total across all addresses: past the total the service does not close but tightens,
    # refusing only addresses that have failed already (services.ratelimit.ActivationLimiter).
    activation_max_failures: int = 10
    activation_max_failures_per_code: int = 5
    activation_max_failures_total: int = 300
    activation_failure_window_s: int = 15 * 60
    # The reverse proxies in front of the API (addresses or CIDR blocks, comma-separated): only
    # a request from one of them may name its client in X-Forwarded-For. Default none: the
    # connection's peer is the client (uvicorn's own forwarded-header handling is off).
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        parse_networks(value)
        return value

    # GET /healthz answers `degraded` (still 200, naming the group) while the worker's or the
    # sink's consumer group is further behind the log than this many messages, over all its
    # input partitions; measured from the broker's committed offsets at most every
    # HEALTH_LAG_INTERVAL_S, so frequent health probes cost no more than one request a while.
    health_max_lag: int = Field(default=50_000, ge=1)
    health_lag_interval_s: float = Field(default=10.0, gt=0)

    # The check-in edge (issue 16, api/edge.py): processes that serve POST /v1/checkins (and
    # their own /healthz and /metrics) from Kafka alone, never opening ClickHouse, all on the
    # public port (SO_REUSEPORT), passing every other request to the reads process.
    # CHECKIN_EDGES: how many `make run` starts in front of its reads process, and how many
    # one `python -m api.edge` container runs (0: no edge, one process serves everything as
    # before). Default: 2 on a machine with two or more cores, else 0.
    checkin_edges: int | None = Field(default=None, ge=0, le=64)
    # Where the reads process listens when edges front it (`make run`: 0 picks a free loopback
    # port), and the address the edges pass other requests to.
    reads_port: int = Field(default=0, ge=0, le=65535)
    edge_upstream: str = ""
    # Each edge process also serves its /healthz and /metrics alone on EDGE_METRICS_PORT + its
    # index (0 = off), so Prometheus scrapes every edge, not whichever the shared port picks.
    edge_metrics_port: int = Field(default=0, ge=0, le=65535)
    # How long an edge that misses a member or station waits for its registry feed to reach
    # the log's end before it answers 404 (a member created a moment ago elsewhere).
    edge_catch_up_s: float = Field(default=2.0, gt=0, le=30)
    # Service slots: how long a sign-up (or its cancel) waits for the activities agent's verdict
    # to reach the warehouse before answering 202 `pending` (the page then polls the activity).
    activity_wait_s: float = Field(default=3.0, ge=0, le=10)

    # The drill-down's no-shows (services.slot_weeks_job): members' slot attendance tallied every
    # SLOT_WEEKS_INTERVAL_S (0 = off) where the sink runs, this week and the SLOT_WEEKS_LOOK_BACK
    # weeks before it (a review may still change them; older weeks keep their last tally).
    slot_weeks_interval_s: float = Field(default=300.0, ge=0)
    slot_weeks_look_back: int = Field(default=2, ge=0, le=52)

    # Reminders (services.reminders): decided every REMINDERS_INTERVAL_S (0 = off) where the
    # sink runs; none is created or sent in the quiet hours (local, start inclusive, end
    # exclusive; they may wrap midnight).
    reminders_interval_s: float = Field(default=300.0, ge=0)
    reminders_quiet_start_h: int = Field(default=21, ge=0, le=23)
    reminders_quiet_end_h: int = Field(default=8, ge=0, le=23)
    # Delivery beyond the page's inbox: an HTTP SMS gateway (off while SMS_GATEWAY_URL is
    # empty). A send is tried SMS_ATTEMPTS times, waiting SMS_RETRY_S, 2x, 4x ... between.
    sms_gateway_url: str = ""
    sms_gateway_key: str = ""
    sms_sign_name: str = ""
    sms_timeout_s: float = Field(default=5.0, gt=0, le=60)
    sms_attempts: int = Field(default=3, ge=1, le=10)
    sms_retry_s: float = Field(default=1.0, ge=0, le=60)
    # WeChat subscription messages (services.wechat), off while WECHAT_APP_ID is empty: the
    # mini-program's app id and secret fetch an access token from WECHAT_API_BASE (the official
    # https://api.weixin.qq.com; tests point it at a local server); WECHAT_TEMPLATE_ID is the
    # subscription template whose `thing1` / `thing2` fields carry the title and the text.
    # Retried as SMS_ATTEMPTS / SMS_RETRY_S say.
    wechat_app_id: str = ""
    wechat_app_secret: str = ""
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_template_id: str = ""
    wechat_page: str = "pages/index/index"

    # Assisted and team check-in (api/routers/assisted.py): at most TEAM_CHECKIN_MAX members in
    # one team check-in; an assisted search answers at most ASSISTED_SEARCH_LIMIT members.
    team_checkin_max: int = Field(default=30, ge=1, le=200)
    assisted_search_limit: int = Field(default=20, ge=1, le=100)
    # Anomaly flags (services.anomalies): two stations reached faster than
    # ANOMALY_MAX_SPEED_KMH over the straight line between them; one phone scanning for several
    # members within ANOMALY_DEVICE_WINDOW_DAYS of each other.
    anomaly_max_speed_kmh: float = Field(default=60.0, gt=0, le=1000)
    anomaly_device_window_days: int = Field(default=30, ge=1, le=365)

    # Personal-data retention (services.privacy, applied by the migrate step as ClickHouse
    # TTLs): raw scans of a year are deleted once SCAN_RETENTION_YEARS years have begun since
    # (4: the current year and the three closed ones, the span annual assessments are looked
    # back over); the access log of who read whose personal data is kept
    # ACCESS_LOG_RETENTION_YEARS (PIPL art. 56 asks at least 3). 0 keeps forever.
    scan_retention_years: int = Field(default=4, ge=0, le=100)
    access_log_retention_years: int = Field(default=3, ge=0, le=100)

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        # A grace end without a zone is read as UTC, like every stored time.
        for name in ("station_key_grace_until", "bearer_key_grace_until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                setattr(self, name, value.replace(tzinfo=UTC))
        if not self.kafka_bootstrap:
            self.kafka_bootstrap = f"127.0.0.1:{self.kafka_port}"
        if not self.public_url:
            self.public_url = f"http://127.0.0.1:{self.api_port}"
        self.public_url = self.public_url.rstrip("/")
        if not self.clickhouse_dsn:
            self.clickhouse_dsn = f"chdb://{self.data_dir.resolve() / 'clickhouse'}"
        if self.checkin_edges is None:
            self.checkin_edges = 2 if (os.cpu_count() or 1) >= 2 else 0
        if not self.sink_mode:
            self.sink_mode = "embedded" if self.is_embedded_clickhouse else "external"
        if self.sink_mode not in ("embedded", "external"):
            raise ValueError("SINK_MODE must be 'embedded' or 'external'")
        problems = contradictions(self)
        if problems:
            raise ValueError(
                "settings contradict each other:\n" + "\n".join(f"- {p}" for p in problems)
            )
        return self

    @property
    def edges(self) -> int:
        """CHECKIN_EDGES as resolved (never None after validation)."""
        return self.checkin_edges or 0

    @property
    def is_embedded_clickhouse(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb:")

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


# The sink's consumer leaves the group when it does not poll for this long (kafka-python's
# max.poll.interval.ms default); a batch held open longer would be written by a member that
# no longer owns its partitions.
SINK_MAX_POLL_INTERVAL_MS = 300_000
# A rotating station code that lives longer than this is no better than the printed poster.
STATION_CODE_MAX_LIFE_S = 600


def contradictions(s: Settings) -> list[str]:
    """The rules the README states between settings, each broken one as a sentence that says
    what to set. Checked at start-up by every process (API, worker, sink, migrate): a process
    refuses to start rather than run with a combination that silently loses or miscounts."""
    out: list[str] = []
    if s.session_rederive_horizon_h < s.max_scan_age_h + 24:
        out.append(
            f"SESSION_REDERIVE_HORIZON_H ({s.session_rederive_horizon_h:g}) must be at least "
            f"MAX_SCAN_AGE_H + 24 ({s.max_scan_age_h + 24:g}): a late offline scan older than "
            "the horizon cannot be re-paired and goes to the dead letters; raise "
            "SESSION_REDERIVE_HORIZON_H or lower MAX_SCAN_AGE_H"
        )
    if s.session_review_window_days * 24 < s.session_rederive_horizon_h:
        # The worker forgets a session past the review window; were its scans still re-pairable
        # (the horizon), a late scan would derive it anew at revision 1 beside the warehouse's
        # higher one: an overlap and its hours twice. The horizon covers MAX_SCAN_AGE_H, so a
        # late scan's session also arrives still reviewable.
        out.append(
            f"SESSION_REVIEW_WINDOW_DAYS ({s.session_review_window_days}) must cover "
            f"SESSION_REDERIVE_HORIZON_H ({s.session_rederive_horizon_h:g} h): a session "
            "forgotten while its scans can still be re-paired would be counted twice, and one "
            "made from a late offline scan would arrive past review; set "
            f"SESSION_REVIEW_WINDOW_DAYS to at least {-(-int(s.session_rederive_horizon_h) // 24)}"
        )
    if s.session_forgotten_credit_h > s.session_cap_h:
        out.append(
            f"SESSION_FORGOTTEN_CREDIT_H ({s.session_forgotten_credit_h:g}) must not exceed "
            f"SESSION_CAP_H ({s.session_cap_h:g}): a forgotten check-out would be credited more "
            "than any real session; lower SESSION_FORGOTTEN_CREDIT_H"
        )
    if s.week_min_credited_min > s.session_cap_h * 60:
        out.append(
            f"WEEK_MIN_CREDITED_MIN ({s.week_min_credited_min:g}) must not exceed SESSION_CAP_H "
            f"({s.session_cap_h:g} h): no session could count without a review; lower "
            "WEEK_MIN_CREDITED_MIN"
        )
    if s.sink_batch_size < 1 or s.sink_batch_ms < 1:
        out.append("SINK_BATCH_SIZE and SINK_BATCH_MS must both be at least 1")
    elif s.sink_batch_ms >= SINK_MAX_POLL_INTERVAL_MS:
        out.append(
            f"SINK_BATCH_MS ({s.sink_batch_ms}) must stay below {SINK_MAX_POLL_INTERVAL_MS} "
            "(the sink's max poll interval): a batch held longer is written after the group "
            "has given its partitions away; lower SINK_BATCH_MS"
        )
    if s.station_code_window_s + s.station_code_grace_s > STATION_CODE_MAX_LIFE_S:
        out.append(
            f"STATION_CODE_WINDOW_S + STATION_CODE_GRACE_S ({s.station_code_window_s} + "
            f"{s.station_code_grace_s}) must not exceed {STATION_CODE_MAX_LIFE_S}: a rotating "
            "code living longer is no better than the printed poster; lower them"
        )
    for name, ttl in (
        ("TOKEN_TTL_S", s.token_ttl_s),
        ("PHONE_TOKEN_TTL_S", s.phone_token_ttl_s),
        ("ACTIVATION_TTL_S", s.activation_ttl_s),
        ("SCREEN_KEY_TTL_S", s.screen_key_ttl_s),
    ):
        if ttl <= 0:
            out.append(f"{name} ({ttl}) must be positive: every token would be born expired")
    if 0 < s.phone_token_ttl_s <= s.activation_ttl_s:
        out.append(
            f"ACTIVATION_TTL_S ({s.activation_ttl_s}) must be shorter than PHONE_TOKEN_TTL_S "
            f"({s.phone_token_ttl_s}): the one-use code would outlive the token it gives the "
            "phone; lower ACTIVATION_TTL_S or raise PHONE_TOKEN_TTL_S"
        )
    if s.activation_max_failures > s.activation_max_failures_total:
        out.append(
            f"ACTIVATION_MAX_FAILURES ({s.activation_max_failures}) must not exceed "
            f"ACTIVATION_MAX_FAILURES_TOTAL ({s.activation_max_failures_total}): one address "
            "would lock out everyone before itself; raise ACTIVATION_MAX_FAILURES_TOTAL"
        )
    if s.kafka_port == s.kafka_controller_port:
        out.append(f"KAFKA_PORT and KAFKA_CONTROLLER_PORT are both {s.kafka_port}: set them apart")
    if s.api_port == s.worker_web_port or s.sink_metrics_port in (s.api_port, s.worker_web_port):
        out.append(
            f"API_PORT ({s.api_port}), WORKER_WEB_PORT ({s.worker_web_port}) and "
            f"SINK_METRICS_PORT ({s.sink_metrics_port}, 0 = off) must differ"
        )
    if s.reads_port and s.reads_port in (s.api_port, s.worker_web_port, s.sink_metrics_port):
        out.append(
            f"READS_PORT ({s.reads_port}) must differ from API_PORT, WORKER_WEB_PORT and "
            "SINK_METRICS_PORT: the edges hold API_PORT and pass other requests to READS_PORT"
        )
    if s.edge_upstream and not s.edge_upstream.startswith(("http://", "https://")):
        out.append(
            f"EDGE_UPSTREAM ({s.edge_upstream!r}) must be an http:// or https:// address of the "
            "reads process (e.g. http://api:8000)"
        )
    faults = [
        name
        for name, on in (
            ("SESSION_FAULT_SKIP", bool(s.session_fault_skip)),
            ("SESSION_FAULT_HOLD_FILE", bool(s.session_fault_hold_file)),
            ("COMMAND_FAULT_SKIP", bool(s.command_fault_skip)),
            ("SINK_FAULT_AFTER_INSERT", s.sink_fault_after_insert > 0),
            ("SINK_FAULT_INSERTS_DOWN_S", s.sink_fault_inserts_down_s > 0),
        )
        if on
    ]
    # Tests and drills run on embedded chDB; a ClickHouse server is what a deployment uses.
    if faults and not s.is_embedded_clickhouse:
        out.append(
            f"{', '.join(faults)} (fault injection for tests and drills) must not be set with a "
            "ClickHouse server DSN (a production-looking deployment): unset them"
        )
    if s.clickhouse_cluster and s.is_embedded_clickhouse:
        out.append(
            f"CLICKHOUSE_CLUSTER ({s.clickhouse_cluster}) needs a ClickHouse server DSN: embedded "
            "chDB is one process on one machine; set CLICKHOUSE_DSN=http://... or unset the cluster"
        )
    return out


# Anything shorter is guessable offline from one signed token (an HMAC key) or online (the
# admin token is compared as is).
MIN_SECRET_BYTES = 32
KNOWN_DEV_SECRETS = frozenset({DEV_SECRET_KEY, DEV_ADMIN_TOKEN})
GENERATE_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


class InsecureSecrets(RuntimeError):
    """A process was asked to start with a missing, built-in or short secret."""


def secret_problems(s: Settings) -> list[str]:
    """What is wrong with SECRET_KEY and ADMIN_TOKEN for a process that serves or signs, each as
    a sentence saying what to set. Not part of `contradictions`: unit tests build Settings with
    short keys freely; only a start-up (API, worker, sink) asks this (`require_secrets`)."""
    if s.allow_dev_secrets:
        if s.is_embedded_clickhouse:
            return []
        return [
            "ALLOW_DEV_SECRETS (for tests and local development) must not be set with a "
            "ClickHouse server DSN (a production-looking deployment): unset it"
        ]
    out: list[str] = []
    for name, value in (("SECRET_KEY", s.secret_key), ("ADMIN_TOKEN", s.admin_token)):
        if not value:
            why = "is not set"
        elif value in KNOWN_DEV_SECRETS:
            why = "is the built-in development value (it is in the source code)"
        elif len(value.encode()) < MIN_SECRET_BYTES:
            why = f"is shorter than {MIN_SECRET_BYTES} bytes"
        else:
            continue
        out.append(
            f"{name} {why}: set {name} to a random value of at least {MIN_SECRET_BYTES} bytes, "
            f"e.g. the output of {GENERATE_HINT}"
        )
    if s.secret_key and s.secret_key == s.admin_token:
        out.append(
            "SECRET_KEY and ADMIN_TOKEN are the same: whoever is shown the admin token could "
            "sign any token; set them to different random values"
        )
    return out


def require_secrets(s: Settings) -> None:
    """Raises InsecureSecrets naming each problem; called first by every serving process."""
    problems = secret_problems(s)
    if problems:
        raise InsecureSecrets(
            "refusing to start with these secrets:\n"
            + "\n".join(f"- {p}" for p in problems)
            + "\n(`make run` generates its own in DATA_DIR; ALLOW_DEV_SECRETS=1 accepts the "
            "built-in ones for a local development run only)"
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
