"""A record Kafka can never take is refused for good (413), not reported as Kafka being down
(a retryable 503 would have the client resend it forever)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from infra.kafka import Broker, create_topics
from services import topics
from services.events import CampaignUpserted
from services.events.engagement import Campaign, GridAssignment
from services.publisher import Publisher, PublishRefused
from services.settings import Settings
from tests.support.stack import run_async

pytestmark = [pytest.mark.kafka]


def huge_campaign() -> CampaignUpserted:
    now = datetime.now(UTC)
    return CampaignUpserted(
        event_id=str(uuid.uuid4()),
        occurred_at=now,
        record=Campaign(
            id="camp-huge",
            version=1,
            name="下沉",
            community_id="c1",
            starts_at=now,
            ends_at=now,
            assignments=[
                GridAssignment(grid_id="g1", member_ids=[f"mem_{i:016x}" for i in range(200_000)])
            ],
            updated_at=now,
            updated_by="admin:admin",
        ),
    )


def test_a_record_over_the_message_limit_is_refused_not_unavailable(broker: Broker) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topics(broker.bootstrap, prefix)
    settings = Settings(kafka_bootstrap=broker.bootstrap, topic_prefix=prefix)
    publisher = Publisher(settings)
    event = huge_campaign()
    assert len(event.to_bytes()) > 1024 * 1024
    try:
        with pytest.raises(PublishRefused, match="larger than the event log accepts"):
            publisher.send_sync(topics.CAMPAIGNS, "camp-huge", event)
        with pytest.raises(PublishRefused):
            publisher.send_many_sync([(topics.CAMPAIGNS, "camp-huge", event)])

        async def on_the_loop() -> None:
            await publisher.start()
            try:
                with pytest.raises(PublishRefused):
                    await publisher.send(topics.CAMPAIGNS, "camp-huge", event)
                # Refused is not down: health does not count it as failing sends.
                assert publisher.failing_for() == 0.0
            finally:
                await publisher.aclose()

        # In a thread of its own: the browser tests keep an event loop running in this one.
        run_async(on_the_loop())
    finally:
        publisher.close()
