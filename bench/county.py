"""A small registry for the HTTP benchmarks, created through the API's bulk endpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from services.settings import Settings
from services.tokens import issue_bearer


@dataclass
class Registry:
    units: list[str] = field(default_factory=list)
    communities: list[str] = field(default_factory=list)
    # community id -> station tokens there
    stations: dict[str, list[str]] = field(default_factory=dict)
    # member id -> community id
    members: dict[str, str] = field(default_factory=dict)

    def station_tokens(self) -> list[str]:
        return [t for ts in self.stations.values() for t in ts]


def _bulk(c: httpx.Client, path: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(items), 1000):
        r = c.post(f"{path}/bulk", json={"items": items[i : i + 1000]}, timeout=120)
        if r.status_code != 201:
            raise RuntimeError(f"POST {path}/bulk: {r.status_code} {r.text[:500]}")
        out.extend(r.json()["items"])
    return out


def create(
    s: Settings, n_members: int, n_communities: int = 18, n_units: int = 10, stations_per: int = 4
) -> Registry:
    reg = Registry()
    with httpx.Client(
        base_url=f"http://127.0.0.1:{s.api_port}",
        headers={"Authorization": f"Bearer {s.admin_token}"},
    ) as c:
        reg.units = [
            u["id"] for u in _bulk(c, "/v1/units", [{"name": f"单位{i}"} for i in range(n_units)])
        ]
        reg.communities = [
            x["id"]
            for x in _bulk(
                c, "/v1/communities", [{"name": f"社区{i}"} for i in range(n_communities)]
            )
        ]
        sts = _bulk(
            c,
            "/v1/stations",
            [
                {"community_id": cid, "name": f"服务站{j}", "kind": "service_station"}
                for cid in reg.communities
                for j in range(stations_per)
            ],
        )
        for st in sts:
            reg.stations.setdefault(st["community_id"], []).append(
                str(st["qr_url"]).rsplit("/s/", 1)[1]
            )
        ms = _bulk(
            c,
            "/v1/members",
            [
                {
                    "name": f"成员{i}",
                    "unit_id": reg.units[i % n_units],
                    "community_id": reg.communities[i % n_communities],
                }
                for i in range(n_members)
            ],
        )
        reg.members = {m["id"]: m["community_id"] for m in ms}
    return reg


def member_token(s: Settings, member_id: str) -> str:
    # Minted with the stack's key, as POST /v1/auth/tokens would (that endpoint is rate-limited).
    return issue_bearer(s, "member", member_id)
