"""The command agents' end-of-partition catch-up (streams/guarantee.py, `Guarantee.catch_up`),
on the real broker and a faust worker: a command at the end of its partition that faust does
not deliver (the worker drops its first delivery, as faust's streams do with a message fetched
before a rebalance, or never deliver after a takeover) is read directly and judged, without
waiting for a later command on that partition; the read is counted as a tail read, not a hole.

Without the catch-up (main before it), the member's sign-up and the wish's order stay unjudged
for good here: nothing else is published to their partitions."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.support.slots import slot
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

# The first delivery of these offsets of the first partition that reaches them is dropped:
# each test's item is alone on its topic, so they are that item's commands, each the last one
# of its partition when it is dropped. The slot's sign-up (offset 1, after its creation); the
# wish's order (offset 0: faust delivers nothing of that partition, the catch-up starts it)
# and its dispatch (offset 1).
STACK_ENV = {
    "COMMAND_FAULT_SKIP": "activities.commands:*:1,lists.commands:*:0,lists.commands:*:1",
    # The sign-up route waits this long for the verdict before answering `pending`.
    "ACTIVITY_WAIT_S": "1",
}
# Two catch-up checks (CATCH_UP_S = 10 s: first sight, then stood still) and slack under load.
CAUGHT_UP_S = 60.0


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    c = stack.create
    unit = c("/v1/units", {"name": "县民政局"})
    community = c("/v1/communities", {"name": "南关社区"})
    station = c(
        "/v1/stations",
        {"community_id": community["id"], "name": "南关党群服务站", "kind": "service_station"},
    )
    m1 = c("/v1/members", {"name": "刘洋", "unit_id": unit["id"], "community_id": community["id"]})
    return {
        "community": community,
        "station": station,
        "m1": m1,
        "org": stack.token("organizer", community["id"]),
        "m1_tok": stack.token("member", m1["id"]),
    }


def metric(stack: Stack, name: str, topic: str) -> float:
    """A counter of the worker's, for one input topic (0 when it never counted)."""
    port = stack.settings.worker_web_port
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.findall(rf'^{name}_total\{{topic="{re.escape(topic)}"\}} (\S+)$', text, re.M)
    return sum(float(v) for v in found)


def test_a_sign_up_at_the_end_of_its_partition_is_judged(
    stack: Stack, county: dict[str, Any]
) -> None:
    r = stack.client.post("/v1/activities", json=slot(county, capacity=3), headers=county["org"])
    assert r.status_code == 202, r.text
    (aid,) = r.json()["ids"]

    def read(headers: dict[str, str]) -> dict[str, Any] | None:
        r = stack.client.get(f"/v1/activities/{aid}", headers=headers)
        return r.json() if r.status_code == 200 else None

    assert stack.wait_for(lambda: read(county["org"])), "the slot was not judged"
    r = stack.client.post(f"/v1/activities/{aid}/signup", json={}, headers=county["m1_tok"])
    assert r.status_code == 202, r.text
    # Acknowledged, its first delivery dropped: no verdict within the route's wait.
    assert r.json()["status"] == "pending", r.text

    placed = stack.wait_for(
        lambda: (a := read(county["m1_tok"])) and a["mine"] and a["mine"]["status"] == "placed",
        timeout=CAUGHT_UP_S,
    )
    log = stack.worker.log_path.read_text()
    assert placed, f"the sign-up was never judged: {read(county['m1_tok'])}; {log[-3000:]}"
    assert "fault injection: dropped" in log
    assert re.search(r"1 offsets at the end of \S*activities\.commands\[\d\] were not", log), log[
        -3000:
    ]
    assert metric(stack, "volunteer_agent_tail_reads", "activities.commands") == 1
    assert metric(stack, "volunteer_agent_holes", "activities.commands") == 0


def test_a_wish_dispatch_at_the_end_of_its_partition_is_judged(
    stack: Stack, county: dict[str, Any]
) -> None:
    org = county["org"]
    body = {
        "community_id": county["community"]["id"],
        "title": "帮忙买药",
        "resident_name": "张奶奶",
        "resident_contact": "南关小区3号楼",
    }
    r = stack.client.post("/v1/wishes", json=body, headers=org)
    assert r.status_code == 202, r.text
    wish_id = r.json()["id"]

    def status() -> str | None:
        r = stack.client.get(f"/v1/wishes/{wish_id}", headers=org)
        return r.json()["status"] if r.status_code == 200 else None

    assert stack.wait_for(lambda: status() == "ordered", timeout=CAUGHT_UP_S), status()
    r = stack.client.post(
        f"/v1/wishes/{wish_id}/dispatch",
        json={"assignee_kind": "member", "assignee_id": county["m1"]["id"]},
        headers=org,
    )
    assert r.status_code == 202, r.text

    dispatched = stack.wait_for(lambda: status() == "dispatched", timeout=CAUGHT_UP_S)
    log = stack.worker.log_path.read_text()
    assert dispatched, f"the dispatch was never judged: {status()}; {log[-3000:]}"
    assert re.search(r"1 offsets at the end of \S*lists\.commands\[\d\] were not", log), log[-3000:]
    assert metric(stack, "volunteer_agent_tail_reads", "lists.commands") == 2
    assert metric(stack, "volunteer_agent_holes", "lists.commands") == 0
