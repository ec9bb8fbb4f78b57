"""The two pages that hang at a station (issue 19): the tablet's rotating code and the poster
sheet the organizer prints, at 320, 390 and 1366 px, with the accessibility check and
screenshots."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from tests.support.a11y import assert_no_serious_violations
from tests.support.live import BROWSER_MARKS, Live

pytestmark = BROWSER_MARKS

WIDTHS = (320, 390, 1366)


def test_tablet_screen_and_poster_sheet_at_three_widths(
    live: Live, sized: Callable[[int], BrowserContext], shot: Callable[[Page, str], Path]
) -> None:
    d = live.community_with_member("钱屏幕")
    organizer = live.auth("organizer", d["community"]["id"])
    r = live.http.post(f"/v1/stations/{d['station']['id']}/screen-keys", headers=organizer)
    assert r.status_code == 201, r.text
    screen_url = r.json()["url"]
    for width in WIDTHS:
        ctx = sized(width)
        page = ctx.new_page()
        page.goto(screen_url)
        expect(page.locator("#qr")).to_have_attribute("data-token", re.compile(r"^w\d+\..+"))
        over = page.evaluate("document.documentElement.scrollWidth") - width
        assert over <= 1, f"the screen page is {over} px wider than {width} px"
        assert_no_serious_violations(page)
        shot(page, f"tablet-{width}-screen")
        sheet = ctx.new_page()
        sheet.set_extra_http_headers(organizer)
        sheet.goto(f"{live.base_url}/v1/communities/{d['community']['id']}/posters")
        expect(sheet.locator("body")).to_contain_text(d["station"]["name"])
        assert_no_serious_violations(sheet)
        shot(sheet, f"tablet-{width}-posters")
