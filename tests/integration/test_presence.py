"""Presence that is hard to fake (issue 17), through the public API on the real broker, a faust
worker and chDB: no station token in a member's or HR's answer, a station that refuses the
printed poster, a rotating code checked against the time a scan claims, back-dated poster scans
flagged for review or refused per station, screen keys that expire sooner and can be revoked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.station_codes import current_window, sign_window
from services.tokens import sign_station
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
# Refused scans count against a member's check-in limit too; these tests make a dozen each.
STACK_ENV = {"LIMIT_CHECKINS_MEMBER_BURST": "100"}

H = dict[str, str]


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in (1, 2):
        u = stack.create("/v1/units", {"name": f"在场局{n}-{uuid.uuid4().hex[:4]}"})
        c = stack.create("/v1/communities", {"name": f"在场社区{n}-{uuid.uuid4().hex[:4]}"})
        m = stack.create(
            "/v1/members", {"name": f"在场党员{n}", "unit_id": u["id"], "community_id": c["id"]}
        )
        out |= {f"u{n}": u, f"c{n}": c, f"m{n}": m}
    c1 = out["c1"]["id"]
    out["poster"] = stack.create(  # the defaults: posters accepted, back-dated ones flagged
        "/v1/stations", {"community_id": c1, "name": "海报服务站", "kind": "service_station"}
    )
    out["refuse"] = stack.create(
        "/v1/stations",
        {
            "community_id": c1,
            "name": "拒补报驿站",
            "kind": "member_post",
            "backdated_poster": "refuse",
        },
    )
    out["screen"] = stack.create(
        "/v1/stations", {"community_id": c1, "name": "屏幕服务站", "kind": "service_station"}
    )
    out["other"] = stack.create(
        "/v1/stations",
        {"community_id": out["c2"]["id"], "name": "邻社区服务站", "kind": "service_station"},
    )
    out["h"] = {
        "m1": stack.token("member", out["m1"]["id"]),
        "m2": stack.token("member", out["m2"]["id"]),
        "hr1": stack.token("hr", out["u1"]["id"]),
        "org1": stack.token("organizer", c1),
        "org2": stack.token("organizer", out["c2"]["id"]),
        "admin": stack.admin,
    }
    return out


def checkin(
    stack: Stack, headers: H, token: str, action: str, scanned_at: datetime | None = None
) -> Any:
    body: dict[str, Any] = {
        "station_token": token,
        "action": action,
        "client_event_id": str(uuid.uuid4()),
    }
    if scanned_at is not None:
        body["scanned_at"] = scanned_at.isoformat()
    return stack.client.post("/v1/checkins", json=body, headers=headers)


def code_at(stack: Stack, station_id: str, at: datetime) -> str:
    """The rotating code the station's screen showed at `at`."""
    return sign_window(stack.settings, station_id, current_window(stack.settings, at.timestamp()))


def error(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def sessions(stack: Stack, member_id: str) -> list[dict[str, Any]]:
    r = stack.client.get(f"/v1/members/{member_id}/sessions", headers=stack.admin)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def wait_closed(
    stack: Stack, member_id: str, station_id: str, hours: float | None = None
) -> dict[str, Any]:
    """The member's closed session at the station; with `hours`, once it has them (a late scan
    re-pairs the member's scans, and a batch may show the state before it)."""

    def closed() -> dict[str, Any] | None:
        for s in sessions(stack, member_id):
            if (
                s["station_id"] == station_id
                and s["status"] == "closed"
                and (hours is None or s["hours"] == hours)
            ):
                return s
        return None

    got = stack.wait_for(closed, timeout=180)  # a shared machine: the worker may lag
    assert got, sessions(stack, member_id)
    return dict(got)


# ---- no station token in a member's or HR's answer ----------------------------------------


def test_station_tokens_reach_only_the_stations_organizer_and_the_admin(
    stack: Stack, county: dict[str, Any]
) -> None:
    h = county["h"]
    stations = [county[k] for k in ("poster", "refuse", "screen", "other")]
    tokens = {s["id"]: sign_station(stack.settings, s["id"]) for s in stations}
    c1 = county["c1"]["id"]

    def listed(who: str, query: str = "") -> dict[str, dict[str, Any]]:
        r = stack.client.get(f"/v1/stations?limit=500{query}", headers=h[who])
        assert r.status_code == 200, r.text
        return {s["id"]: s for s in r.json()["items"]}

    # A member of any community and HR read every station, but never its signed token.
    for who in ("m1", "m2", "hr1"):
        for query in ("", f"&community_id={c1}"):
            seen = listed(who, query)
            assert county["poster"]["id"] in seen
            assert all(s["qr_url"] is None for s in seen.values()), (who, seen)
            r = stack.client.get(f"/v1/stations?limit=500{query}", headers=h[who])
            assert not [t for t in tokens.values() if t in r.text], who
        for s in stations:
            r = stack.client.get(f"/v1/stations/{s['id']}", headers=h[who])
            assert r.status_code == 200 and r.json()["qr_url"] is None, (who, r.text)
            assert tokens[s["id"]] not in r.text
            # Nor its QR code, nor a screen key: the same 404 as a station that does not exist.
            assert stack.client.get(f"/v1/stations/{s['id']}/qr", headers=h[who]).status_code in (
                403,
                404,
            )
            r = stack.client.post(f"/v1/stations/{s['id']}/screen-keys", headers=h[who])
            assert r.status_code == 403, r.text

    # The station's own organizer and the admin keep them (to print and hang the poster).
    own = listed("org1")
    assert set(own) == {county[k]["id"] for k in ("poster", "refuse", "screen")}
    for sid, s in own.items():
        assert s["qr_url"].endswith("/s/" + tokens[sid])
    assert (
        tokens[county["other"]["id"]]
        not in stack.client.get("/v1/stations?limit=500", headers=h["org1"]).text
    )
    everything = listed("admin")
    assert all(everything[s["id"]]["qr_url"].endswith(tokens[s["id"]]) for s in stations)
    r = stack.client.get(f"/v1/stations/{county['poster']['id']}", headers=h["org1"])
    assert r.json()["qr_url"].endswith(tokens[county["poster"]["id"]])

    # What the attack needed: another community's member has no token to check in with, and
    # the one a member could still photograph proves nothing once its station refuses posters
    # (below). The other organizer cannot even see the station.
    r = stack.client.get(f"/v1/stations/{county['poster']['id']}", headers=h["org2"])
    assert r.status_code == 404


# ---- a station that refuses the printed poster --------------------------------------------


def test_a_station_can_require_the_screens_code_and_refuse_the_poster(
    stack: Stack, county: dict[str, Any]
) -> None:
    h = county["h"]
    sid = county["screen"]["id"]
    # Only the station's organizer (or the admin) changes the policy; HR and members may not.
    for who, status in (("m1", 403), ("hr1", 403), ("org2", 404)):
        r = stack.client.patch(
            f"/v1/stations/{sid}", json={"accepts_poster": False}, headers=h[who]
        )
        assert r.status_code == status, (who, r.text)
    r = stack.client.patch(f"/v1/stations/{sid}", json={"accepts_poster": False}, headers=h["org1"])
    assert r.status_code == 200, r.text
    assert r.json()["accepts_poster"] is False and r.json()["backdated_poster"] == "flag"

    # The organizer sees which stations accept posters; the change is in the station's history.
    own = stack.client.get("/v1/stations?limit=500", headers=h["org1"]).json()["items"]
    accepts = {s["name"]: s["accepts_poster"] for s in own}
    assert accepts == {"海报服务站": True, "拒补报驿站": True, "屏幕服务站": False}
    history = stack.client.get(f"/v1/stations/{sid}/history", headers=h["org1"]).json()
    change = history["items"][-1]
    assert change["changed_by"] == f"organizer:{county['c1']['id']}"
    assert {"field": "accepts_poster", "before": True, "after": False} in change["changes"]

    # The printed poster is refused with a clear code; the screen's code checks in.
    now = datetime.now(UTC)
    poster = sign_station(stack.settings, sid)
    r = checkin(stack, h["m1"], poster, "in")
    assert error(r) == (403, "poster_not_accepted"), r.text
    r = checkin(stack, h["m1"], poster, "in", now - timedelta(hours=2))
    assert error(r) == (403, "poster_not_accepted"), r.text
    assert checkin(stack, h["m1"], code_at(stack, sid, now), "in").status_code == 202
    # The phone that opens the poster's link is told to scan the screen instead.
    page = stack.client.get(f"/s/{poster}")
    assert page.status_code == 403 and "本站点不接受纸质二维码" in page.text
    page = stack.client.get(f"/s/{code_at(stack, sid, now)}")
    assert page.status_code == 200 and "屏幕服务站" in page.text
    # The poster sheet prints no code for it (a printed one would be refused).
    sheet = stack.client.get(f"/v1/communities/{county['c1']['id']}/posters", headers=h["org1"])
    assert sheet.status_code == 200
    assert poster not in sheet.text and "本站点不使用纸质二维码" in sheet.text
    assert sheet.text.count("data:image/svg+xml;base64,") == 2  # the two other stations

    # Accepting posters again is the same kind of change.
    r = stack.client.patch(f"/v1/stations/{sid}", json={"accepts_poster": True}, headers=h["org1"])
    assert r.status_code == 200 and r.json()["accepts_poster"] is True
    r = checkin(stack, h["m1"], poster, "out")
    assert r.status_code == 202, r.text
    r = stack.client.patch(
        f"/v1/stations/{sid}", json={"accepts_poster": False}, headers=h["admin"]
    )
    assert r.status_code == 200 and r.json()["accepts_poster"] is False


def test_bad_presence_policies_are_refused_naming_the_field(
    stack: Stack, county: dict[str, Any]
) -> None:
    h = county["h"]
    sid = county["poster"]["id"]
    for body in (
        {"accepts_poster": "maybe"},
        {"accepts_poster": 1},
        {"accepts_poster": None},
        {"backdated_poster": "delete"},
        {"backdated_poster": None},
        {"screen_key_generation": 0},  # revoked only through its own route
    ):
        r = stack.client.patch(f"/v1/stations/{sid}", json=body, headers=h["org1"])
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] in ("invalid_request", "invalid_station"), r.text
        assert next(iter(body)) in r.json()["error"]["message"], r.text
    r = stack.client.post(
        "/v1/stations",
        json={
            "community_id": county["c1"]["id"],
            "name": "坏站",
            "kind": "member_post",
            "backdated_poster": "ignore",
        },
        headers=h["org1"],
    )
    assert r.status_code == 422 and "backdated_poster" in r.json()["error"]["message"], r.text
    r = stack.client.get(f"/v1/stations/{sid}", headers=h["org1"])
    assert r.json()["accepts_poster"] is True and r.json()["backdated_poster"] == "flag"


# ---- a rotating code proves the time the scan claims ----------------------------------------


def test_a_rotating_code_counts_only_in_its_window(stack: Stack, county: dict[str, Any]) -> None:
    h = county["h"]
    m = county["m2"]  # a member of another community may serve at this station, on site
    sid = county["screen"]["id"]
    now = datetime.now(UTC)
    # A code the screen shows now, claimed an hour back: refused (it was not shown then).
    r = checkin(stack, h["m2"], code_at(stack, sid, now), "in", now - timedelta(hours=1))
    assert error(r) == (422, "scanned_at_outside_code_window"), r.text
    # A code of 40 minutes ago, claimed now or sent now without a claim: not shown any more.
    old = code_at(stack, sid, now - timedelta(minutes=40))
    r = checkin(stack, h["m2"], old, "in", now)
    assert error(r) == (422, "scanned_at_outside_code_window"), r.text
    assert error(checkin(stack, h["m2"], old, "in")) == (400, "station_code_expired")
    # The same code queued offline, claiming its own window (and 20 s into the grace after it):
    # the screen was seen when it says.
    t_in = now - timedelta(minutes=40)
    assert checkin(stack, h["m2"], old, "in", t_in).status_code == 202
    t_out = now - timedelta(minutes=10)
    late = code_at(stack, sid, t_out)
    r = checkin(stack, h["m2"], late, "out", t_out + timedelta(seconds=20))
    assert r.status_code == 202, r.text
    s = wait_closed(stack, m["id"], sid)
    assert s["hours"] == pytest.approx(
        (t_out + timedelta(seconds=20) - t_in).total_seconds() / 3600, abs=0.01
    )
    assert "backdated_poster" not in s["flags"]
    # A code signed with another key, or of another station, is no code at all.
    forged = old.replace(sid, county["poster"]["id"])
    assert error(checkin(stack, h["m2"], forged, "in", t_in)) == (400, "invalid_station_token")


# ---- back-dated poster scans: flagged for review, or refused, per station --------------------


def test_a_backdated_poster_scan_is_flagged_for_review_by_default(
    stack: Stack, county: dict[str, Any]
) -> None:
    h = county["h"]
    m1 = county["m1"]["id"]
    sid = county["poster"]["id"]
    poster = sign_station(stack.settings, sid)
    now = datetime.now(UTC)
    # "Check-in from home": a session made up three hours after the fact, with a poster token.
    assert checkin(stack, h["m1"], poster, "in", now - timedelta(hours=4)).status_code == 202
    assert checkin(stack, h["m1"], poster, "out", now - timedelta(hours=2)).status_code == 202
    # Until the check-out is applied, the earlier test's check-in at the screen station closes
    # this session (4 h): wait for the pair.
    s = wait_closed(stack, m1, sid, hours=2.0)
    # The flag changes no credit by itself: the hours stand until the organizer decides.
    assert "backdated_poster" in s["flags"], s
    queue = stack.client.get(
        f"/v1/communities/{county['c1']['id']}/review-queue", headers=h["org1"]
    ).json()
    queued = {i["id"]: i for i in queue["items"]}
    assert s["id"] in queued and "backdated_poster" in queued[s["id"]]["flags"]
    # The organizer rejects it: no hours, and it leaves the queue.
    r = stack.client.post(
        f"/v1/sessions/{s['id']}/review",
        json={"action": "reject", "reason": "当日无人见到该党员在站点"},
        headers=h["org1"],
    )
    assert r.status_code == 202, r.text

    def rejected() -> bool:
        return any(x["id"] == s["id"] and x["status"] == "rejected" for x in sessions(stack, m1))

    assert stack.wait_for(rejected, timeout=60)
    queue = stack.client.get(
        f"/v1/communities/{county['c1']['id']}/review-queue", headers=h["org1"]
    ).json()
    assert s["id"] not in {i["id"] for i in queue["items"]}


def test_a_station_may_refuse_backdated_poster_scans(stack: Stack, county: dict[str, Any]) -> None:
    h = county["h"]
    sid = county["refuse"]["id"]
    poster = sign_station(stack.settings, sid)
    now = datetime.now(UTC)
    threshold = stack.settings.poster_backdate_s
    r = checkin(stack, h["m2"], poster, "in", now - timedelta(seconds=threshold + 60))
    assert error(r) == (422, "poster_scan_backdated"), r.text
    r = checkin(stack, h["m2"], poster, "in", now - timedelta(hours=3))
    assert error(r) == (422, "poster_scan_backdated"), r.text
    # Within the threshold (a weak signal, a retry) and on time: accepted, not flagged.
    assert checkin(stack, h["m2"], poster, "in", now - timedelta(seconds=60)).status_code == 202
    assert checkin(stack, h["m2"], poster, "out").status_code == 202
    s = wait_closed(stack, county["m2"]["id"], sid)
    assert "backdated_poster" not in s["flags"]
    # The screen's code of that moment is no back-dated poster scan: accepted however late.
    t = now - timedelta(hours=3)
    assert checkin(stack, h["m2"], code_at(stack, sid, t), "in", t).status_code == 202


# ---- screen keys -------------------------------------------------------------------------


def test_screen_keys_expire_in_a_month_and_are_revoked_by_the_organizer(
    stack: Stack, county: dict[str, Any]
) -> None:
    h = county["h"]
    sid = county["poster"]["id"]
    r = stack.client.post(f"/v1/stations/{sid}/screen-keys", headers=h["org1"])
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    expires = datetime.fromisoformat(r.json()["expires_at"])
    assert expires - datetime.now(UTC) <= timedelta(days=30, minutes=1)
    second = stack.client.post(f"/v1/stations/{sid}/screen-keys", headers=h["admin"]).json()["key"]

    def live(k: str) -> Any:
        return stack.client.get(f"/v1/stations/{sid}/live-code", headers={"X-Screen-Key": k})

    def page(k: str) -> int:
        return stack.client.get(f"/stations/{sid}/screen", params={"key": k}).status_code

    assert live(key).status_code == 200 and live(second).status_code == 200
    assert page(key) == 200

    # Only its organizer and the admin revoke; the same answers as issuing a key.
    for who, status in (("m1", 403), ("hr1", 403), ("org2", 404)):
        r = stack.client.post(f"/v1/stations/{sid}/screen-keys/revoke", headers=h[who])
        assert r.status_code == status, (who, r.text)
        assert live(key).status_code == 200
    r = stack.client.post("/v1/stations/st_0000000000000000/screen-keys/revoke", headers=h["org1"])
    assert error(r) == (404, "station_not_found")
    r = stack.client.post(f"/v1/stations/{sid}/screen-keys/revoke", headers=h["org1"])
    assert r.status_code == 200, r.text
    assert r.json()["screen_key_generation"] == 1

    # Every key issued before is refused on the very next request (the tablet's page fetches
    # its code with it, and says the link is no longer valid).
    for k in (key, second):
        r = live(k)
        assert error(r) == (401, "unauthorized") and "revoked" in r.json()["error"]["message"]
        assert page(k) == 403
    fresh = stack.client.post(f"/v1/stations/{sid}/screen-keys", headers=h["org1"]).json()["key"]
    assert live(fresh).status_code == 200 and page(fresh) == 200
    # The revocation is in the station's history (who, when), and does not touch the poster.
    history = stack.client.get(f"/v1/stations/{sid}/history", headers=h["org1"]).json()
    assert {"field": "screen_key_generation", "before": 0, "after": 1} in history["items"][-1][
        "changes"
    ]
    assert stack.client.get(f"/v1/stations/{sid}", headers=h["org1"]).json()["accepts_poster"]
