"""Puts a generated county into a running service through its public API, as an office would.

Units, communities, grids and stations go through the registry's bulk endpoints (a thousand
rows per request); the members arrive as the CSV an HR office hands over
(`POST /v1/imports/members?partial=true`). Every step first lists what the service already has
and creates only what is missing (matched by name within its parent, and members by phone,
which is also how the import matches them), so a re-run creates nothing. The reads run
concurrently; the whole county takes seconds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.demo.county import County, DemoPost, members_csv, unit_rosters
from services.privacy import mask_phone

PAGE = 500  # the list endpoints' maximum page
# Rows per bulk request: one publish and one ClickHouse insert per request on the server side.
BULK = 1000


class LoadError(RuntimeError):
    pass


@dataclass
class LoadedCounty:
    """Server ids of everything in the county, by generator key."""

    units: dict[str, str] = field(default_factory=dict)
    communities: dict[str, str] = field(default_factory=dict)
    towns: dict[str, str] = field(default_factory=dict)
    grids: dict[str, str] = field(default_factory=dict)
    stations: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # key → the station as the API returned it
    members: dict[str, str] = field(default_factory=dict)
    # Member id -> their team leader's id as the server had it when the county was loaded.
    team_leaders: dict[str, str | None] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    import_result: dict[str, Any] | None = None

    def station_token(self, key: str) -> str:
        return str(self.stations[key]["qr_url"]).rsplit("/s/", 1)[1]


def _check(r: httpx.Response, what: str) -> Any:
    if r.status_code >= 400:
        raise LoadError(f"{what}: HTTP {r.status_code} {r.text[:500]}")
    return r.json()


async def list_all(
    client: httpx.AsyncClient, path: str, params: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every item of a `{"items", "total"}` list endpoint, page by page."""
    items: list[dict[str, Any]] = []
    while True:
        q = {**(params or {}), "limit": str(PAGE), "offset": str(len(items))}
        page = _check(await client.get(path, params=q), f"GET {path}")
        batch = page["items"]
        items.extend(batch)
        if not batch or len(items) >= int(page.get("total", 0)):
            return items


async def _create_many(
    client: httpx.AsyncClient, path: str, bodies: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Creates through the bulk endpoint (all or nothing per request), in order."""
    made: list[dict[str, Any]] = []
    for i in range(0, len(bodies), BULK):
        chunk = bodies[i : i + BULK]
        r = await client.post(f"{path}/bulk", json={"items": chunk}, timeout=120)
        made.extend(_check(r, f"POST {path}/bulk ({len(chunk)} items)")["items"])
    return made


async def _place_in_towns(client: httpx.AsyncClient, county: County, out: LoadedCounty) -> None:
    """Sets each community's town where it differs (a county loaded before towns existed)."""
    have = {i["id"]: i.get("town_id") for i in await list_all(client, "/v1/communities")}
    for c in county.communities:
        cid = out.communities[c.key]
        town_id = out.towns.get(c.town_key)
        if town_id is not None and have.get(cid) != town_id:
            r = await client.patch(f"/v1/communities/{cid}", json={"town_id": town_id})
            _check(r, f"PATCH /v1/communities/{cid}")


async def load_county(client: httpx.AsyncClient, county: County) -> LoadedCounty:
    """Loads (or finds) the county; `client` carries the base URL and the admin's token."""
    out = LoadedCounty()

    async def ensure_named(kind: str, path: str, wanted: list[tuple[str, str]]) -> dict[str, str]:
        have = {i["name"]: i["id"] for i in await list_all(client, path)}
        missing = [(k, n) for k, n in wanted if n not in have]
        bodies = [{"name": n} for _, n in missing]
        if path == "/v1/towns":  # a county has a handful: no bulk call for them
            made = [_check(await client.post(path, json=b), f"POST {path}") for b in bodies]
        else:
            made = await _create_many(client, path, bodies)
        for (_, n), item in zip(missing, made, strict=True):
            have[n] = item["id"]
        out.created[kind] = len(missing)
        return {k: have[n] for k, n in wanted}

    out.units, out.towns = await asyncio.gather(
        ensure_named("units", "/v1/units", [(u.key, u.name) for u in county.units]),
        ensure_named("towns", "/v1/towns", [(t.key, t.name) for t in county.towns]),
    )
    out.communities = await ensure_named(
        "communities", "/v1/communities", [(c.key, c.name) for c in county.communities]
    )
    await _place_in_towns(client, county, out)

    # Grids and stations: what each community already has, in one pass.
    async def existing(path: str) -> dict[tuple[str, str], dict[str, Any]]:
        per = await asyncio.gather(
            *(list_all(client, path, {"community_id": cid}) for cid in out.communities.values())
        )
        return {(i["community_id"], i["name"]): i for items in per for i in items}

    have_grids, have_stations = await asyncio.gather(
        existing("/v1/grids"), existing("/v1/stations")
    )

    out.created["grids"] = 0
    for level in (4, 5):
        todo = []
        for g in county.grids:
            if g.level != level:
                continue
            cid = out.communities[g.community_key]
            hit = have_grids.get((cid, g.name))
            if hit is not None:
                out.grids[g.key] = hit["id"]
                continue
            body: dict[str, Any] = {"community_id": cid, "name": g.name, "level": level}
            if g.parent_key is not None:
                body["parent_id"] = out.grids[g.parent_key]
            todo.append((g.key, body))
        made = await _create_many(client, "/v1/grids", [b for _, b in todo])
        for (key, _), item in zip(todo, made, strict=True):
            out.grids[key] = item["id"]
        out.created["grids"] += len(todo)

    todo_st = []
    for s in county.stations:
        cid = out.communities[s.community_key]
        hit = have_stations.get((cid, s.name))
        if hit is not None:
            out.stations[s.key] = hit
        else:
            st_body: dict[str, object] = {"community_id": cid, "name": s.name, "kind": s.kind}
            if s.lat is not None and s.lon is not None:
                st_body |= {"lat": s.lat, "lon": s.lon}
            todo_st.append((s.key, st_body))
    made_st = await _create_many(client, "/v1/stations", [b for _, b in todo_st])
    for (key, _), item in zip(todo_st, made_st, strict=True):
        out.stations[key] = item
    out.created["stations"] = len(todo_st)

    # Members: the whole list as one spreadsheet. partial=true so one bad row (there should be
    # none) cannot block the other 2,279; the import matches by phone, so a re-run is a no-op.
    r = await client.post(
        "/v1/imports/members",
        params={"partial": "true"},
        files={"file": ("在职党员报到名单.csv", members_csv(county), "text/csv")},
        timeout=120,
    )
    out.import_result = _check(r, "POST /v1/imports/members")
    # Answers show phones masked (services.privacy): a member is found by community, name and
    # masked phone, and only where two share those, by a search for the full number.
    seen: dict[tuple[str, str, str | None], list[str]] = {}
    per = await asyncio.gather(
        *(
            list_all(client, "/v1/members", {"community_id": cid})
            for cid in out.communities.values()
        )
    )
    for items in per:
        for item in items:
            found_as = (item["community_id"], item["name"], item.get("phone"))
            seen.setdefault(found_as, []).append(item["id"])
            out.team_leaders[item["id"]] = item.get("team_leader_id")
    by_phone: dict[str, str] = {}
    ambiguous = []
    for dm in county.members:
        ids = seen.get((out.communities[dm.community_key], dm.name, mask_phone(dm.phone)), [])
        if len(ids) == 1:
            by_phone[dm.phone] = ids[0]
        elif ids:
            ambiguous.append(dm.phone)
    for phone, found in zip(
        ambiguous,
        await asyncio.gather(*(list_all(client, "/v1/members", {"q": p}) for p in ambiguous)),
        strict=True,
    ):
        exact = [f["id"] for f in found if f.get("phone") == mask_phone(phone)]
        if len(exact) == 1:
            by_phone[phone] = exact[0]
    missing_members = [m.key for m in county.members if m.phone not in by_phone]
    if missing_members:
        errors = (out.import_result or {}).get("errors", [])[:5]
        raise LoadError(
            f"{len(missing_members)} members not found after the import; first errors: {errors}"
        )
    out.members = {m.key: by_phone[m.phone] for m in county.members}
    await _upload_rosters(client, county, out)
    return out


async def _upload_rosters(client: httpx.AsyncClient, county: County, out: LoadedCounty) -> None:
    """Each unit's roster (its members and a few not yet reported); a re-run changes nothing."""
    rosters = unit_rosters(county)
    sem = asyncio.Semaphore(8)

    async def one(unit_key: str, data: bytes) -> None:
        async with sem:
            uid = out.units[unit_key]
            r = await client.post(
                f"/v1/imports/units/{uid}/roster",
                params={"partial": "true"},
                files={"file": ("在职党员名单.csv", data, "text/csv")},
                timeout=120,
            )
            _check(r, f"POST /v1/imports/units/{uid}/roster")

    await asyncio.gather(*(one(k, d) for k, d in rosters.items()))


def admin_client(base_url: str, admin_token: str, connections: int = 32) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {admin_token}"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(30.0),
    )


async def load_posts(
    client: httpx.AsyncClient,
    county: County,
    loaded: LoadedCounty,
    member_token: Callable[[str], str] | None = None,
    timeout_s: float = 120,
) -> dict[str, int]:
    """The county's standing posts (岗位认领), created by the admin, claimed by their holders
    (each with a member token: `member_token(member_id)`, signed by the caller who holds the
    service's secret, else issued by `POST /v1/auth/tokens`, which allows about 60 a minute)
    and approved, through the public API. Idempotent: a post is
    created with a client id derived from its key (the same post on a re-run), and a post
    already held or claimed is left as it is. Each step waits until the previous one is
    readable (writes answer 202; the sink lands them within a second or so)."""
    ns = uuid.UUID("0b6c1f7e-9d4e-4a0b-8f1e-2c3d4e5f6a7b")

    Posts = dict[tuple[str, str], dict[str, Any]]

    async def posts_now() -> Posts:
        per = await asyncio.gather(
            *(
                client.get("/v1/posts", params={"community_id": out_c})
                for out_c in loaded.communities.values()
            )
        )
        found: Posts = {}
        for r in per:
            for p in _check(r, "GET /v1/posts")["items"]:
                found[(p["community_id"], p["title"])] = p
        return found

    async def wait(pred: Any, what: str) -> Posts:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            now = await posts_now()
            if pred(now):
                return now
            if asyncio.get_running_loop().time() > deadline:
                raise LoadError(f"posts: {what} did not land within {timeout_s:.0f} s")
            await asyncio.sleep(0.5)

    def key_of(p: DemoPost) -> tuple[str, str]:
        return (loaded.communities[p.community_key], p.title)

    have = await posts_now()
    todo = [p for p in county.posts if key_of(p) not in have]
    sem = asyncio.Semaphore(16)

    async def one(method: str, path: str, headers: dict[str, str] | None, body: Any) -> None:
        async with sem:
            r = await client.request(method, path, json=body, headers=headers)
            _check(r, f"{method} {path}")

    await asyncio.gather(
        *(
            one(
                "POST",
                "/v1/posts",
                None,
                {
                    "community_id": loaded.communities[p.community_key],
                    "grid_id": loaded.grids[p.grid_key],
                    "kind": p.kind,
                    "title": p.title,
                    "client_event_id": str(uuid.uuid5(ns, f"{county.seed}:{p.key}")),
                },
            )
            for p in todo
        )
    )
    have = await wait(lambda now: all(key_of(p) in now for p in county.posts), "the new posts")
    claims = [
        p
        for p in county.posts
        if p.holder_key is not None
        and not have[key_of(p)]["holder_id"]
        and loaded.members[p.holder_key] not in have[key_of(p)]["pending_claims"]
    ]

    async def claim(p: DemoPost) -> None:
        member_id = loaded.members[p.holder_key or ""]
        if member_token is not None:
            token = member_token(member_id)
        else:
            async with sem:
                while True:
                    r = await client.post(
                        "/v1/auth/tokens", json={"role": "member", "subject_id": member_id}
                    )
                    if r.status_code != 429:
                        break
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                token = _check(r, "POST /v1/auth/tokens")["token"]
        post_id = have[key_of(p)]["post_id"]
        await one("POST", f"/v1/posts/{post_id}/claim", {"Authorization": f"Bearer {token}"}, {})

    await asyncio.gather(*(claim(p) for p in claims))
    have = await wait(
        lambda now: all(
            loaded.members[p.holder_key or ""] in now[key_of(p)]["pending_claims"]
            or now[key_of(p)]["holder_id"]
            for p in claims
        ),
        "the claims",
    )
    approvals = [p for p in claims if not have[key_of(p)]["holder_id"]]
    await asyncio.gather(
        *(
            one(
                "POST",
                f"/v1/posts/{have[key_of(p)]['post_id']}/decision",
                None,
                {"member_id": loaded.members[p.holder_key or ""], "decision": "approve"},
            )
            for p in approvals
        )
    )
    return {"posts": len(todo), "claimed": len(claims), "approved": len(approvals)}
