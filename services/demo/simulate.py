"""Drives simulated weeks of the demo county through the public API, as members' phones would.

    python -m services.demo.simulate --weeks 1 --speed 0 --rate 200

1. Loads the county (idempotent: a loaded county is found, not duplicated).
2. Plans every scan of the last `--weeks` weeks up to now (`services.demo.plan`).
3. Sends them with `POST /v1/checkins`, each member with their own bearer token, over a pooled
   asyncio client. Scans are spread over lanes; a member always sits in one lane, so their scans
   reach the server in the order the phone made them (the session rules depend on that order).
4. Prints a summary (sent, accepted, refused by reason, achieved rate) and writes the expected
   truth (per member sessions and hours under the stream's session rules, over the scans the
   server accepted) to a JSON file for a test or a benchmark to reconcile with ClickHouse.

Time. `scanned_at` carries the simulated time of each scan. The simulated span ends at the
moment the run starts, so no scan lies in the future. `--speed X` paces sending so that X
simulated seconds pass per wall second (0: as fast as `--rate` allows). The public check-in
refuses a scan older than the server's MAX_SCAN_AGE_H (72 h by default), which protects members'
records from back-dated scans; this simulator does not get round it. So against a default server
only the last three days of a longer run are credited, and the rest is reported as refused
(`scanned_at_out_of_range`), never silently dropped; the truth file counts only accepted scans.
Loading a year of history needs an admin-only backfill path (proposed in issue 3's report), or
a server started with a larger MAX_SCAN_AGE_H for a throwaway demo or benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services import local_secrets, topics
from services.counting import hours
from services.demo import assisted as demo_assisted
from services.demo.county import DEFAULT_SEED, County, generate, slice_county
from services.demo.excusals import ExcusalPlan, plan_excusals
from services.demo.loader import LoadedCounty, admin_client, list_all, load_county
from services.demo.plan import PlannedScan, expected_truth, plan_scans
from services.demo.reminders_plan import (
    Person,
    plan_notifications,
    plan_opt_outs,
    served_weeks,
)
from services.demo.slots import SlotPlan, Team, plan_slots
from services.events import CheckinScanned, NotificationCreated, ReminderPreferenceSet
from services.publisher import Publisher
from services.sessions import SessionRules
from services.settings import Settings, get_settings
from services.timeutil import LOCAL_TZ
from services.tokens import issue_bearer

RETRIES = 6


@dataclass
class RunResult:
    planned: int = 0
    sent: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    seconds: float = 0.0
    # (member_id, scan, received) in the order the server accepted them, per lane.
    accepted_scans: list[list[tuple[str, PlannedScan, datetime]]] = field(default_factory=list)
    refused_scans: list[tuple[PlannedScan, str]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "sent": self.sent,
            "accepted": self.accepted,
            "refused": dict(sorted(self.refused.items())),
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
            "achieved_rate_per_s": round(self.rate, 1),
        }


@dataclass
class DemoMonth:
    """What the simulator published straight to the log beside the scans (`--no-slots` skips
    it): the month's slots, excused weeks, check-ins made for members and reminders."""

    slots: SlotPlan
    excusals: ExcusalPlan
    # Member keys of the members without a smartphone (the organizer checks them in).
    without_phone: set[str]
    teams: dict[str, Team]
    # The assisted and team scans, as the assisted routes would have published them.
    direct: list[CheckinScanned]
    notifications: list[NotificationCreated] = field(default_factory=list)
    # Members who turned a kind of reminder off before the month.
    opt_outs: list[ReminderPreferenceSet] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        assisted = sum(1 for e in self.direct if e.assist == "assisted")
        return {
            "slots": self.slots.slots,
            "places_over": self.slots.places_over,
            "no_shows": self.slots.no_shows,
            "excusal_requests": self.excusals.requests,
            "members_without_phone": len(self.without_phone),
            "assisted_scans": assisted,
            "teams": len(self.teams),
            "team_scans": len(self.direct) - assisted,
            "reminders": dict(Counter(n.kind for n in self.notifications)),
            "reminders_turned_off": dict(Counter(p.kind for p in self.opt_outs)),
        }


@dataclass
class Simulation:
    truth: dict[str, Any]
    result: RunResult
    loaded: LoadedCounty
    scans: list[PlannedScan]
    month: DemoMonth | None = None


class RateLimiter:
    """At most `rate` sends per second across all lanes (0: unlimited)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(self.next, now)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


async def member_tokens(
    client: httpx.AsyncClient,
    member_ids: list[str],
    signing: Settings | None = None,
    concurrency: int = 8,
) -> dict[str, str]:
    """A bearer token per member, the token each member's phone holds after binding.

    The API rate-limits token issuance (60 a minute per issuer), which is right for people and
    would make a county's 2,280 members take over half an hour. Run beside the server with its
    SECRET_KEY (`signing`), the simulator signs the tokens itself, as the issuing endpoint
    would, and checks one with `/v1/auth/me` first; otherwise it asks the API, honouring
    Retry-After.
    """
    if signing is not None and member_ids:
        minted = {m: issue_bearer(signing, "member", m) for m in member_ids}
        probe = await client.get(
            "/v1/auth/me", headers={"Authorization": f"Bearer {minted[member_ids[0]]}"}
        )
        if probe.status_code == 200:
            return minted
        print(
            "note: this SECRET_KEY is not the server's; asking the API for tokens", file=sys.stderr
        )
    sem = asyncio.Semaphore(concurrency)

    async def one(mid: str) -> tuple[str, str]:
        async with sem:
            while True:
                r = await client.post("/v1/auth/tokens", json={"role": "member", "subject_id": mid})
                if r.status_code == 429:
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                    continue
                if r.status_code != 201:
                    raise RuntimeError(f"token for {mid}: HTTP {r.status_code} {r.text[:300]}")
                return mid, str(r.json()["token"])

    return dict(await asyncio.gather(*(one(m) for m in member_ids)))


async def send_scans(
    client: httpx.AsyncClient,
    loaded: LoadedCounty,
    scans: list[PlannedScan],
    tokens: dict[str, str],
    *,
    speed: float = 0.0,
    rate: float = 0.0,
    lanes: int = 64,
) -> RunResult:
    """Sends the planned scans; returns the tally and the accepted scans in acceptance order."""
    res = RunResult(planned=len(scans))
    member_lane: dict[str, int] = {}
    queues: list[list[PlannedScan]] = [[] for _ in range(lanes)]
    for s in scans:
        queues[member_lane.setdefault(s.member_key, len(member_lane) % lanes)].append(s)
    res.accepted_scans = [[] for _ in range(lanes)]
    limiter = RateLimiter(rate)
    station_tokens = {k: loaded.station_token(k) for k in loaded.stations}
    t0 = scans[0].send_at if scans else datetime.now(UTC)
    w0 = time.monotonic()

    async def post(s: PlannedScan, member_id: str) -> tuple[int, str]:
        body = {
            "station_token": station_tokens[s.station_key],
            "action": s.action,
            "client_event_id": s.client_event_id,
            "scanned_at": s.scanned_at.isoformat(),
        }
        headers = {"Authorization": f"Bearer {tokens[member_id]}"}
        code = "network_error"
        for attempt in range(RETRIES):
            if attempt:
                res.retries += 1
                await asyncio.sleep(0.2 * 2 ** (attempt - 1))
            try:
                r = await client.post("/v1/checkins", json=body, headers=headers)
            except httpx.TransportError:
                continue
            if r.status_code == 202:
                return 202, ""
            try:
                code = str(r.json()["error"]["code"])
            except (ValueError, KeyError, TypeError):
                code = f"http_{r.status_code}"
            # 503: Kafka did not acknowledge. The phone retries with the same client_event_id,
            # which the server maps to the same event, so a retry can never count twice.
            if r.status_code != 503:
                return r.status_code, code
        return 503, code

    async def drive(i: int) -> None:
        for s in queues[i]:
            if speed > 0:
                due = w0 + (s.send_at - t0).total_seconds() / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await limiter.wait()
            member_id = loaded.members[s.member_key]
            res.sent += 1
            status, code = await post(s, member_id)
            if status == 202:
                res.accepted += 1
                res.accepted_scans[i].append((member_id, s, datetime.now(UTC)))
            else:
                res.refused[code] += 1
                res.refused_scans.append((s, code))

    await asyncio.gather(*(drive(i) for i in range(lanes)))
    res.seconds = time.monotonic() - w0
    return res


# Ratings as people give them: mostly good, a few middling. Comments are what residents and
# clerks write (people-facing text, Chinese).
RATINGS = (5, 5, 5, 4, 4, 4, 3)
ARRANGEMENT_COMMENTS = ("安排合理，时间方便", "服务内容贴近居民需求", "希望多安排周末时段", "")
SERVICE_COMMENTS = ("服务认真负责", "积极主动，群众满意", "按时到岗，表现良好", "")


async def send_feedback(
    client: httpx.AsyncClient,
    county: County,
    loaded: LoadedCounty,
    res: RunResult,
    tokens: dict[str, str],
    period: str,
    seed: int,
    signing: Settings | None,
) -> Counter[str]:
    """Two-way feedback for the period (双向评议): each member who served rates their
    community's arrangement; each community's organizer rates the service of those members.
    Deterministic client_event_ids make a re-run the same feedback, not more of it."""
    served = sorted({mid for lane in res.accepted_scans for mid, _, _ in lane})
    community_of = {
        loaded.members[m.key]: loaded.communities[m.community_key] for m in county.members
    }
    organizers: dict[str, str] = {}
    for cid in sorted({community_of[mid] for mid in served}):
        if signing is not None:
            organizers[cid] = issue_bearer(signing, "organizer", cid)
        else:
            r = await client.post("/v1/auth/tokens", json={"role": "organizer", "subject_id": cid})
            organizers[cid] = str(r.json().get("token", ""))
    tally: Counter[str] = Counter()
    sem = asyncio.Semaphore(16)

    async def post(path: str, token: str, body: dict[str, Any]) -> None:
        async with sem:
            r = await client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        if r.status_code in (200, 201, 202):
            tally["accepted"] += 1
        else:
            try:
                tally[f"refused:{r.json()['error']['code']}"] += 1
            except (ValueError, KeyError, TypeError):
                tally[f"refused:http_{r.status_code}"] += 1

    jobs = []
    for i, mid in enumerate(served):
        pick = hash_pick(seed, mid)
        ceid = str(uuid.uuid5(_FEEDBACK_NS, f"{seed}:{period}:{mid}"))
        # A member checked in only by others (no smartphone, or only in a team) has no token:
        # they rate nothing, their organizer still rates their service.
        if mid in tokens:
            jobs.append(
                post(
                    "/v1/feedback/community-arrangement",
                    tokens[mid],
                    {
                        "period": period,
                        "rating": RATINGS[pick % len(RATINGS)],
                        "comment": ARRANGEMENT_COMMENTS[i % len(ARRANGEMENT_COMMENTS)],
                        "client_event_id": ceid,
                    },
                )
            )
        jobs.append(
            post(
                "/v1/feedback/member-service",
                organizers[community_of[mid]],
                {
                    "member_id": mid,
                    "period": period,
                    "rating": RATINGS[(pick // 7) % len(RATINGS)],
                    "comment": SERVICE_COMMENTS[pick % len(SERVICE_COMMENTS)],
                    "client_event_id": str(uuid.uuid5(_FEEDBACK_NS, f"org:{ceid}")),
                },
            )
        )
    await asyncio.gather(*jobs)
    # Micro-wishes (/v1/wishes: order, dispatch, accept, complete, confirm) are the next hook
    # here: a wish's life spans days, so it belongs in the week plan, not after it.
    return tally


_FEEDBACK_NS = uuid.UUID("5d1e7c2a-9b3f-4a60-8e1d-2f4c6b8a0e13")


def hash_pick(seed: int, key: str) -> int:
    # Stable across processes (unlike hash()), so a re-run gives the same ratings.
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "big")


def truth_document(
    county: County,
    loaded: LoadedCounty,
    res: RunResult,
    start: datetime,
    end: datetime,
    clock: datetime,
    rules: SessionRules | None = None,
) -> dict[str, Any]:
    """The expected truth once the worker's clock has passed `clock` (forgotten check-outs
    whose deadline is behind it are then closed, as the worker's clock ticks close them)."""
    accepted = [one for lane in res.accepted_scans for one in lane]
    truth = expected_truth(accepted, clock, rules)
    members: dict[str, Any] = {}
    for m in county.members:
        mid = loaded.members[m.key]
        t = truth.get(mid)
        members[mid] = {
            "key": m.key,
            "name": m.name,
            "phone": m.phone,
            "unit_id": loaded.units[m.unit_key],
            "community_id": loaded.communities[m.community_key],
            "sessions": t.sessions if t else 0,
            "seconds": t.seconds if t else 0,
            "hours": hours(t.seconds if t else 0),
            "open_sessions": t.open_sessions if t else 0,
            "flagged_sessions": t.flagged if t else 0,
        }
    return {
        "seed": county.seed,
        "county_fingerprint": county.fingerprint(),
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "clock": clock.isoformat(),
        "summary": res.summary(),
        "totals": {
            "members": len(members),
            "sessions": sum(v["sessions"] for v in members.values()),
            "credited_seconds": sum(v["seconds"] for v in members.values()),
        },
        "members": members,
    }


async def simulate(
    client: httpx.AsyncClient,
    county: County,
    *,
    weeks: int,
    seed: int,
    speed: float = 0.0,
    rate: float = 0.0,
    lanes: int = 64,
    signing: Settings | None = None,
    feedback: bool = True,
    slots: bool = False,
) -> Simulation:
    """Loads the county, plays the last `weeks` weeks up to now; returns the run and its truth.

    `client` carries the base URL and the admin's token (members get their own tokens)."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    start = end - timedelta(weeks=weeks)
    t = time.monotonic()
    loaded = await load_county(client, county)
    print(f"county loaded in {time.monotonic() - t:.1f}s: created {loaded.created}")
    scans = plan_scans(county, start, weeks, seed)
    month = None
    if slots and signing is not None:
        month, scans = await _month(client, county, loaded, scans, start, end, seed, signing)
    member_ids = sorted({loaded.members[s.member_key] for s in scans})
    tokens = await member_tokens(client, member_ids, signing)
    res = await send_scans(client, loaded, scans, tokens, speed=speed, rate=rate, lanes=lanes)
    if month is not None and signing is not None:
        # The check-ins made for members were published first: the truth takes them first.
        key_of = {v: k for k, v in loaded.members.items()}
        key_of |= {str(v["id"]): k for k, v in loaded.stations.items()}
        planned = demo_assisted.as_planned(month.direct, key_of)
        res.accepted_scans.insert(
            0, [(e.member_id, p, e.received_at) for e, p in zip(month.direct, planned, strict=True)]
        )
        _publish_reminders(county, loaded, res, month, start, end, seed, signing)
    # The server's own rules (its re-pairing horizon, cap, ...) when we know its settings.
    rules = SessionRules.from_settings(signing) if signing is not None else None
    doc = truth_document(county, loaded, res, start, end, datetime.now(UTC), rules)
    if month is not None:
        doc["month"] = month.summary()
    if feedback:
        period = end.astimezone(LOCAL_TZ).strftime("%Y-%m")
        tally = await send_feedback(client, county, loaded, res, tokens, period, seed, signing)
        doc["feedback"] = {"period": period, **dict(sorted(tally.items()))}
    return Simulation(doc, res, loaded, scans, month)


async def _month(
    client: httpx.AsyncClient,
    county: County,
    loaded: LoadedCounty,
    scans: list[PlannedScan],
    start: datetime,
    end: datetime,
    seed: int,
    settings: Settings,
) -> tuple[DemoMonth, list[PlannedScan]]:
    """The month around the scans, published straight to the log as the API would have at
    those moments (the public API takes no slot, excusal or assisted scan in the past): the
    slots (services.demo.slots), the excused weeks (services.demo.excusals), the organizers'
    check-ins of members without a smartphone and the team leaders' check-ins
    (services.demo.assisted). Returns it and the scans the phones still send: the planned
    ones of members with a phone and the attendees' scans of the slots in the span."""
    ids = {
        **loaded.units,
        **loaded.communities,
        **loaded.grids,
        **{k: str(v["id"]) for k, v in loaded.stations.items()},
        **loaded.members,
    }
    busy = {(s.member_key, s.scanned_at.astimezone(LOCAL_TZ).date()) for s in scans}
    no_phone = demo_assisted.without_phone(county, seed)
    teams = demo_assisted.plan_teams(county, seed, no_phone)
    plan = plan_slots(county, ids, end, seed, busy, teams, no_phone)
    # The month's excused weeks too (the API takes none more than 7 days back).
    excusals = plan_excusals(county, ids, end, seed, busy)
    # The organizer sets each team's leader, once: a re-run leaves a member alone whose leader
    # was ever set (by the demo or by the organizer since, who may have changed or cleared it).
    for team in teams.values():
        for key in team.members:
            if loaded.team_leaders.get(ids[key]) is not None:
                continue
            history = await list_all(client, f"/v1/members/{ids[key]}/history")
            if demo_assisted.leader_ever_set(history):
                continue
            r = await client.patch(
                f"/v1/members/{ids[key]}", json={"team_leader_id": ids[team.leader]}
            )
            if r.status_code != 200:
                raise RuntimeError(f"team leader of {key}: HTTP {r.status_code} {r.text[:300]}")
    # Scans as far back as the server takes a phone's (its worker re-pairs no older scan): the
    # slots' attendance and the check-ins made for members. A slot over before that has no
    # attendance the server could record: every place in it reads as a no-show.
    oldest = end - timedelta(hours=settings.max_scan_age_h)
    direct = [
        e
        for e in demo_assisted.assisted_scans(county, ids, scans, no_phone)
        + demo_assisted.team_scans(county, ids, plan.team_checkins)
        if oldest <= e.occurred_at < end
    ]
    direct.sort(key=lambda e: e.occurred_at)
    publisher = Publisher(settings)
    try:
        publisher.send_many_sync(
            [(topics.ACTIVITY_COMMANDS, c.activity_id, c) for c in plan.commands]
            + [(topics.EXCUSALS, e.member_id, e) for e in excusals.events]
            + [(topics.CHECKINS, e.member_id, e) for e in direct]
        )
    finally:
        publisher.close()
    print(
        f"excused weeks: {excusals.requests} requests, {excusals.approved} approved, "
        f"{excusals.declined} declined"
    )
    extra = [s for s in plan.scans if oldest <= s.scanned_at < end]
    share = plan.no_shows / plan.places_over if plan.places_over else 0.0
    unrecorded = sum(1 for c in plan.commands if c.spec is not None and c.spec.ends_at < oldest)
    if unrecorded:
        print(
            f"note: {unrecorded} slots ended more than MAX_SCAN_AGE_H "
            f"({settings.max_scan_age_h:g} h) ago: the server takes no attendance scan for them"
            " and their rosters show every place as a no-show. Play the month in history mode"
            " (README: MAX_SCAN_AGE_H=9000 ... make run).",
            file=sys.stderr,
        )
    print(
        f"slots: {plan.slots} published ({len(plan.commands)} commands), "
        f"{len(extra)} attendance scans, {plan.no_shows} no-shows "
        f"({share:.0%} of {plan.places_over} places in slots over)"
    )
    assisted = sum(1 for e in direct if e.assist == "assisted")
    print(
        f"check-ins made for members: {assisted} assisted scans of {len(no_phone)} members "
        f"without a smartphone, {len(direct) - assisted} team scans of {len(teams)} teams"
    )
    month = DemoMonth(plan, excusals, no_phone, teams, direct)
    phones = [s for s in scans if s.member_key not in no_phone]
    return month, sorted(phones + extra, key=lambda s: s.send_at)


def _publish_reminders(
    county: County,
    loaded: LoadedCounty,
    res: RunResult,
    month: DemoMonth,
    start: datetime,
    end: datetime,
    seed: int,
    settings: Settings,
) -> None:
    """The month's past reminders (services.demo.reminders_plan), decided over the scans the
    server took (a refused scan served nothing it can see) and published to `notifications`
    as the reminder job publishes them; before them, the few members' choices to turn a kind
    off (set the day before the month), which the reminders respect."""
    accepted = sorted(
        ((mid, s) for lane in res.accepted_scans for mid, s, _ in lane), key=lambda x: x[1].send_at
    )
    served = served_weeks(accepted, SessionRules.from_settings(settings))
    by_key = {m.key: m for m in county.members}
    people = [
        Person(loaded.members[k], m.name, loaded.communities[m.community_key], m.reported_on)
        for k, m in by_key.items()
        if k in loaded.members
    ]
    keys = {m.key for m in county.members}
    opt_outs = plan_opt_outs(
        {k: v for k, v in loaded.members.items() if k in keys}, seed, start - timedelta(days=1)
    )
    turned_off: dict[str, set[str]] = {}
    for p in opt_outs:
        turned_off.setdefault(p.kind, set()).add(p.member_id)
    plan = plan_notifications(
        now=end,
        since=max(start, end - timedelta(hours=settings.max_scan_age_h)),
        communities=[
            (loaded.communities[c.key], c.name)
            for c in county.communities
            if c.key in loaded.communities
        ],
        people=people,
        served=served,
        commands=month.slots.commands,
        excusals=month.excusals.events,
        station_names={str(v["id"]): str(v["name"]) for v in loaded.stations.values()},
        quiet=(settings.reminders_quiet_start_h, settings.reminders_quiet_end_h),
        turned_off=turned_off,
    )
    publisher = Publisher(settings)
    try:
        publisher.send_many_sync(
            [(topics.REMINDER_PREFERENCES, f"{p.member_id}|{p.kind}", p) for p in opt_outs]
            + [(topics.NOTIFICATIONS, n.recipient_id, n) for n in plan.notifications]
        )
    finally:
        publisher.close()
    month.notifications, month.opt_outs = plan.notifications, opt_outs
    print(
        f"reminders: {dict(sorted(plan.counts.items()))}; turned off by "
        f"{dict(sorted(Counter(p.kind for p in opt_outs).items()))}"
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    county = generate(args.seed)
    if args.communities or args.members:
        keys = tuple(args.communities.split(",")) if args.communities else ()
        keys = keys or tuple(c.key for c in county.communities)
        county = slice_county(county, keys, args.members or len(county.members))
    if timedelta(weeks=args.weeks) > timedelta(hours=args.max_age_h):
        print(
            f"note: {args.weeks} week(s) reach further back than the server's {args.max_age_h:g} h "
            "scan window; the public check-in refuses the older scans (see --help).",
            file=sys.stderr,
        )
    async with admin_client(args.base_url, args.admin_token, args.lanes) as admin:
        sim = await simulate(
            admin,
            county,
            weeks=args.weeks,
            seed=args.seed,
            speed=args.speed,
            rate=args.rate,
            lanes=args.lanes,
            signing=get_settings() if args.sign_tokens else None,
            feedback=args.feedback,
            slots=args.slots,
        )
    doc = sim.truth
    Path(args.truth).parent.mkdir(parents=True, exist_ok=True)
    Path(args.truth).write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    return doc


def parser() -> argparse.ArgumentParser:
    s = get_settings()
    p = argparse.ArgumentParser(
        prog="python -m services.demo.simulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--base-url", default=f"http://127.0.0.1:{s.api_port}")
    p.add_argument("--admin-token", default=s.admin_token)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--weeks", type=int, default=1)
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="simulated seconds per wall second (0: no pacing; 604800: a week per second)",
    )
    p.add_argument("--rate", type=float, default=0.0, help="at most N scans/s (0: unlimited)")
    p.add_argument("--lanes", type=int, default=64, help="concurrent requests")
    p.add_argument("--communities", default="", help="only these community keys, e.g. c01,c02")
    p.add_argument("--members", type=int, default=0, help="at most N members (0: all)")
    p.add_argument(
        "--no-sign-tokens",
        dest="sign_tokens",
        action="store_false",
        help="ask the API for every member token instead of signing them with SECRET_KEY",
    )
    p.add_argument(
        "--no-feedback",
        dest="feedback",
        action="store_false",
        help="skip the two-way feedback sent after the scans",
    )
    p.add_argument(
        "--no-slots",
        dest="slots",
        action="store_false",
        help="skip the month of service slots and excused weeks (published to Kafka: needs the"
        " server's settings)",
    )
    p.add_argument("--max-age-h", type=float, default=s.max_scan_age_h)
    p.add_argument("--truth", default=str(s.data_dir / "simulation-truth.json"))
    return p


def main(argv: list[str] | None = None) -> int:
    # Beside a running `make run`: its admin token and key are in DATA_DIR, not the environment.
    local_secrets.apply(Settings(), os.environ, create=False)
    get_settings.cache_clear()
    args = parser().parse_args(argv)
    if args.weeks < 1 or args.speed < 0 or args.rate < 0 or args.lanes < 1:
        print("error: --weeks and --lanes must be ≥ 1, --speed and --rate ≥ 0", file=sys.stderr)
        return 2
    doc = asyncio.run(run(args))
    out = {**doc["summary"], "truth": args.truth, **doc["totals"]}
    for extra in ("feedback", "month"):
        if extra in doc:
            out[extra] = doc[extra]
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
