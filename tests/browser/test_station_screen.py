"""The station tablet's rotating QR code, in a real browser, with a window of seconds."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.live import BROWSER_MARKS, Live

pytestmark = BROWSER_MARKS

# Short enough that the test sees the code change and an old one expire in seconds.
WINDOW_S = 3
GRACE_S = 3
LIVE_SETTINGS = {"station_code_window_s": WINDOW_S, "station_code_grace_s": GRACE_S}

ROTATING = re.compile(r"^w\d+\..+")

Shot = Callable[[Page, str], Path]


def checkin(live: Live, headers: dict[str, str], token: str, action: str = "in") -> Any:
    body = {"station_token": token, "action": action, "client_event_id": str(uuid.uuid4())}
    return live.http.post("/v1/checkins", json=body, headers=headers)


def test_screen_rotates_its_code_and_an_old_code_is_refused_after_the_grace(
    live: Live, tablet: BrowserContext, phone: BrowserContext, shot: Shot
) -> None:
    d = live.community_with_member("周敏")
    station_id = d["station"]["id"]
    organizer = live.auth("organizer", d["community"]["id"])
    member = live.auth("member", d["member"]["id"])

    # Only the station's own organizer issues the tablet's key.
    other = live.community_with_member("吴刚")
    r = live.http.post(
        f"/v1/stations/{station_id}/screen-keys",
        headers=live.auth("organizer", other["community"]["id"]),
    )
    assert r.status_code == 404
    r = live.http.post(f"/v1/stations/{station_id}/screen-keys", headers=organizer)
    assert r.status_code == 201, r.text
    screen_url = r.json()["url"]

    page = tablet.new_page()
    page.goto(screen_url)
    qr = page.locator("#qr")
    expect(qr).to_have_attribute("data-token", ROTATING)
    expect(page.locator("#countdown")).to_contain_text("秒后更新")
    # The window is a few seconds: take the picture again if the code turned while taking it.
    for _ in range(3):
        first = qr.get_attribute("data-token")
        path = shot(page, "screen-01-rotating-code")
        if qr.get_attribute("data-token") == first:
            break
    assert first and first.startswith("w")

    # The picture on the screen is the code the server signed (rendered server-side).
    decoded = zxingcpp.read_barcodes(Image.open(path))
    assert [b.text for b in decoded] == [f"{live.base_url}/s/{first}"]

    # A new code after the window.
    expect(qr).not_to_have_attribute("data-token", first, timeout=(WINDOW_S + 3) * 1000)
    second = qr.get_attribute("data-token")
    assert second and second != first
    changed_at = time.time()

    # The previous code still works within the grace (a member who scanned just before the
    # change), then is refused; the current code works; the poster token keeps working.
    assert checkin(live, member, first).status_code == 202
    window = int(first.split(".")[2])
    valid_until = (window + 1) * WINDOW_S + GRACE_S
    time.sleep(max(0.0, valid_until - time.time()) + 0.5)
    assert time.time() - changed_at < 60
    r = checkin(live, member, first, "out")
    assert r.status_code == 400 and r.json()["error"]["code"] == "station_code_expired"
    current = page.locator("#qr").get_attribute("data-token")
    assert current and checkin(live, member, current, "out").status_code == 202

    # A phone that opens an expired code is told to scan again.
    p = phone.new_page()
    resp = p.goto(f"{live.base_url}/s/{first}")
    assert resp is not None and resp.status == 400
    expect(p.locator("#title")).to_have_text("二维码已过期")
    shot(p, "phone-10-expired-screen-code")


def test_screen_refuses_a_wrong_or_foreign_key(live: Live, tablet: BrowserContext) -> None:
    a = live.community_with_member()
    b = live.community_with_member()
    r = live.http.post(
        f"/v1/stations/{b['station']['id']}/screen-keys",
        headers=live.auth("organizer", b["community"]["id"]),
    )
    key_b = r.json()["key"]
    page = tablet.new_page()
    resp = page.goto(f"{live.base_url}/stations/{a['station']['id']}/screen?key={key_b}")
    assert resp is not None and resp.status == 403
    expect(page.locator("#title")).to_have_text("屏幕未授权")
    # The JSON endpoint agrees: the key names another station, or is not a key at all.
    for key in (key_b, "not-a-key", ""):
        r = live.http.get(
            f"/v1/stations/{a['station']['id']}/live-code", headers={"X-Screen-Key": key}
        )
        assert r.status_code in (401, 404), (key, r.text)
