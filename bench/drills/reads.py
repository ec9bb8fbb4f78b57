"""The drills' second reconciliation: the hours users read, through the public API.

`sessions FINAL` being right is not what a member or unit HR sees: they read
`GET /v1/members/{id}/hours?year=` (the member's year) and `GET /v1/units/{id}/assessments`
(HR's assessment rows). Both are asked for every member of the drill, with the admin's token,
for every year the plan touches, and compared with the plan's truth per member: hours (rounded to
0.01 h by the API, so a tolerance of half a hundredth per year asked; a drill's sessions last at
least 15 minutes, so a lost or doubled session is never inside it) and sessions (exact).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

# Requests in flight against the one API process: enough to keep its thread pool busy, few
# enough not to starve its embedded sink.
CONCURRENCY = 8
PAGE = 1000


@dataclass(frozen=True)
class ReadOff:
    member_id: str
    true_h: float
    read_h: float
    true_sessions: int
    read_sessions: int


@dataclass
class ReadCheck:
    """One endpoint's view compared with the truth."""

    name: str
    requests: int = 0
    seconds: float = 0.0
    members: int = 0
    lost_h: float = 0.0
    doubled_h: float = 0.0
    off: list[ReadOff] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.off and not self.errors

    def summary(self) -> str:
        head = (
            f"{self.name}: {self.members:,} members in {self.requests:,} requests, "
            f"{self.seconds:.1f} s"
        )
        if self.ok:
            return f"{head}, all equal to the truth"
        errs = f"; errors: {'; '.join(self.errors[:3])}" if self.errors else ""
        return (
            f"{head}, {len(self.off):,} members off (lost {self.lost_h:.2f} h, doubled "
            f"{self.doubled_h:.2f} h){errs}"
        )


def compare(
    name: str,
    truth_s: Mapping[str, int],
    truth_sessions: Mapping[str, int],
    read: Mapping[str, tuple[float, int]],
    years: int,
) -> ReadCheck:
    """Per member: the hours and sessions read (summed over the years asked) against the truth.
    A member read but not planned is all doubled; planned but never read, all lost."""
    check = ReadCheck(name, members=len(truth_s))
    tol = 0.005 * years + 1e-6
    for m in sorted(set(truth_s) | set(read)):
        t_h = truth_s.get(m, 0) / 3600
        r_h, r_n = read.get(m, (0.0, 0))
        t_n = truth_sessions.get(m, 0)
        if abs(r_h - t_h) > tol or r_n != t_n:
            check.off.append(ReadOff(m, round(t_h, 4), round(r_h, 2), t_n, r_n))
            if r_h > t_h + tol:
                check.doubled_h += r_h - t_h
            elif r_h < t_h - tol:
                check.lost_h += t_h - r_h
    check.off.sort(key=lambda o: (-abs(o.read_h - o.true_h), o.member_id))
    return check


async def _member_hours(
    base: str, headers: dict[str, str], members: list[str], years: list[int], check: ReadCheck
) -> dict[str, tuple[float, int]]:
    out: dict[str, tuple[float, int]] = {}
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for m in members:
        for y in years:
            queue.put_nowait((m, y))
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as c:
        total, t0, last = queue.qsize(), time.monotonic(), [time.monotonic()]

        async def worker() -> None:
            while not queue.empty():
                if time.monotonic() - last[0] > 30:
                    last[0] = time.monotonic()
                    done = total - queue.qsize()
                    rate = done / max(1e-9, last[0] - t0)
                    print(
                        f"  member hours: {done:,} of {total:,} requests, {rate:.0f}/s",
                        flush=True,
                    )
                m, y = queue.get_nowait()
                for attempt in range(3):
                    try:
                        r = await c.get(f"/v1/members/{m}/hours", params={"year": y})
                    except httpx.HTTPError as exc:
                        if attempt == 2:
                            check.errors.append(f"{m} {y}: {exc!r}")
                        await asyncio.sleep(1)
                        continue
                    check.requests += 1
                    if r.status_code != 200:
                        check.errors.append(f"{m} {y}: {r.status_code} {r.text[:200]}")
                        break
                    body = r.json()
                    h, n = out.get(m, (0.0, 0))
                    out[m] = (h + float(body["hours"]), n + int(body["sessions"]))
                    break

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return out


def member_hours(
    base: str,
    headers: dict[str, str],
    truth_s: Mapping[str, int],
    truth_sessions: Mapping[str, int],
    years: list[int],
    members: list[str] | None = None,
) -> ReadCheck:
    """`GET /v1/members/{id}/hours?year=` for every member (or `members`) and year, compared
    with the truth."""
    t = time.monotonic()
    probe = ReadCheck("member hours (GET /v1/members/{id}/hours?year=)")
    ids = sorted(truth_s) if members is None else sorted(set(members) & set(truth_s))
    read = asyncio.run(_member_hours(base, headers, ids, years, probe))
    asked = set(ids)
    check = compare(
        probe.name,
        {m: v for m, v in truth_s.items() if m in asked},
        {m: v for m, v in truth_sessions.items() if m in asked},
        read,
        len(years),
    )
    check.requests, check.errors = probe.requests, probe.errors
    check.seconds = time.monotonic() - t
    return check


def assessment(
    base: str,
    headers: dict[str, str],
    unit_id: str,
    truth_s: Mapping[str, int],
    truth_sessions: Mapping[str, int],
    years: list[int],
    only: set[str] | None = None,
) -> ReadCheck:
    """`GET /v1/units/{id}/assessments?year=` page by page (JSON, PAGE rows a request), every
    member's hours and sessions compared with the truth; `only`: the members compared (the
    others' rows are read but left out, e.g. members with scans never acknowledged)."""
    t = time.monotonic()
    check = ReadCheck("assessment (GET /v1/units/{id}/assessments?year=)")
    read: dict[str, tuple[float, int]] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
        for y in years:
            offset = 0
            while True:
                r = c.get(
                    f"/v1/units/{unit_id}/assessments",
                    params={"year": y, "limit": PAGE, "offset": offset},
                )
                check.requests += 1
                if r.status_code != 200:
                    check.errors.append(f"year {y} offset {offset}: {r.status_code} {r.text[:200]}")
                    break
                body = r.json()
                for item in body["items"]:
                    m = str(item["member_id"])
                    h, n = read.get(m, (0.0, 0))
                    read[m] = (h + float(item["hours"]), n + int(item["sessions"]))
                offset += len(body["items"])
                if not body["items"] or offset >= int(body["total"]):
                    break
    if only is not None:
        read = {m: v for m, v in read.items() if m in only}
    out = compare(check.name, truth_s, truth_sessions, read, len(years))
    out.requests, out.errors = check.requests, check.errors
    out.seconds = time.monotonic() - t
    return out
