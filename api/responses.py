"""Every JSON answer with stored text as it may be shown (`services.text.shown`).

Names and free text are refused on the way in when they carry control or text-direction
characters (services/text.py), but text stored before that rule still holds them. Exports and
server-rendered pages strip them where they write; the JSON answers are stripped here, once, so
the pages that render JSON (and any client) never show a name that reads differently from what
it says."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from services.text import shown


def _shown(value: Any) -> Any:
    if isinstance(value, str):
        # Most text is printable as it is: no regex for it (tab, CR and LF are not "printable"
        # but allowed in free text: `shown` keeps them).
        return value if value.isprintable() else shown(value)
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


class ShownJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return super().render(_shown(content))
