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
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.demo.county import County, members_csv

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
            todo_st.append((s.key, {"community_id": cid, "name": s.name, "kind": s.kind}))
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
    by_phone: dict[str, str] = {}
    per = await asyncio.gather(
        *(
            list_all(client, "/v1/members", {"community_id": cid})
            for cid in out.communities.values()
        )
    )
    for items in per:
        for m in items:
            if m.get("phone"):
                by_phone[m["phone"]] = m["id"]
    missing_members = [m.key for m in county.members if m.phone not in by_phone]
    if missing_members:
        errors = (out.import_result or {}).get("errors", [])[:5]
        raise LoadError(
            f"{len(missing_members)} members not found after the import; first errors: {errors}"
        )
    out.members = {m.key: by_phone[m.phone] for m in county.members}
    return out


def admin_client(base_url: str, admin_token: str, connections: int = 32) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {admin_token}"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(30.0),
    )
