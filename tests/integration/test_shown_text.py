"""Text stored before the input rule (services/text.py) refused control and text-direction
characters is answered without them (api/responses.py): a name that reads differently from what
it says reaches no page and no client."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services import topics
from services.events import MemberUpserted
from services.publisher import Publisher
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_a_name_stored_with_a_direction_override_is_answered_without_it(stack: Stack) -> None:
    unit = stack.create("/v1/units", {"name": "县档案馆"})["id"]
    c = stack.create("/v1/communities", {"name": "南关社区"})["id"]
    member = stack.create("/v1/members", {"name": "郑直", "unit_id": unit, "community_id": c})
    # As an older release stored it: straight onto the registry topic, past today's rule.
    now = datetime.now(UTC)
    record = {**member, "name": "郑\u202e直\x07", "version": member["version"] + 1}
    record["updated_at"] = now
    publisher = Publisher(stack.settings)
    try:
        event = MemberUpserted.model_validate(
            {"event_id": str(uuid.uuid4()), "occurred_at": now, "record": record}
        )
        publisher.send_sync(topics.MEMBERS, member["id"], event)
    finally:
        publisher.close()

    def stored() -> str | None:
        wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
        rows = wh.query("SELECT name FROM members FINAL WHERE id = %(m)s", {"m": member["id"]})
        return str(rows[0][0]) if rows and "\u202e" in str(rows[0][0]) else None

    assert stack.wait_for(stored, timeout=30) == "郑\u202e直\x07"
    r = stack.client.get(f"/v1/members/{member['id']}", headers=stack.admin)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "郑直"
    r = stack.client.get(f"/v1/members?community_id={c}", headers=stack.admin)
    assert [m["name"] for m in r.json()["items"]] == ["郑直"]
