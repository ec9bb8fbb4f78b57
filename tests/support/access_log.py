"""The personal-data access log in tests: a publisher that keeps what the log sends (unit
tests, no network), and the admin's reads of the log on the integration stack."""

from __future__ import annotations

from typing import Any

from services import topics
from tests.support.stack import Stack


class RecordingPublisher:
    """Keeps every `send_sync` as (topic name, key, event)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def send_sync(self, spec: topics.TopicSpec, key: str, event: Any) -> None:
        self.sent.append((spec.name, key, event))


class RecordingCtx:
    """The API context as `api.deps.PersonalDataLog` uses it: its publisher only."""

    def __init__(self) -> None:
        self.publisher = RecordingPublisher()


def log_page(stack: Stack, **params: Any) -> dict[str, Any]:
    """One page of `GET /v1/access-log`, read by the admin."""
    r = stack.client.get("/v1/access-log", params=params, headers=stack.admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def logged(stack: Stack, **filters: str) -> list[dict[str, Any]]:
    """The entries matching the filters, newest first (up to 500)."""
    return list(log_page(stack, limit=500, **filters)["items"])


def wait_entries(stack: Stack, want: int, **params: Any) -> list[dict[str, Any]]:
    """The matching entries once the sink has loaded at least `want` of them."""

    def enough() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = log_page(stack, **params)["items"]
        return items if len(items) >= want else None

    got = stack.wait_for(enough, timeout=60)
    assert got, f"the access log did not reach {want} entries for {params}"
    return list(got)


def wait_logged(stack: Stack, route: str, **filters: str) -> dict[str, Any]:
    """The access-log entry of this route (the newest), once the sink has loaded it."""

    def found() -> dict[str, Any] | None:
        items = [i for i in logged(stack, **filters) if i["route"] == route]
        return items[0] if items else None

    entry = stack.wait_for(found, timeout=60)
    assert entry, f"no access-log entry for {route} {filters}: {logged(stack, **filters)}"
    return dict(entry)
