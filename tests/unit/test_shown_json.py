"""api/responses.py: control and text-direction characters removed from every string."""

from __future__ import annotations

import json

from api.responses import ShownJSONResponse


def test_refused_characters_are_removed_from_every_string() -> None:
    body = ShownJSONResponse(
        {
            "name": "张\u202e三",
            "items": [{"comment": "第一行\n第二行\x07", "n": 3, "ok": True}, None],
            "plain": "东关社区 2号楼",
        }
    ).body
    assert json.loads(body) == {
        "name": "张三",
        "items": [{"comment": "第一行\n第二行", "n": 3, "ok": True}, None],
        "plain": "东关社区 2号楼",
    }
