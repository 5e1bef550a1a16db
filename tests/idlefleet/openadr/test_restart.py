"""A VEN restarted takes the caps it accepted before from the DR topic (real broker, real VTN):
an event delivered again is not re-published, and its cancellation withdraws the old caps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from idlefleet.openadr.accepted import caps_in_force, read_caps_in_force
from idlefleet.openadr.ven import OPT_IN
from idlefleet.service.dr import PlanningDecider
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.messages import DemandResponseEvent, Message
from streams.producer import Publisher
from streams.topics import Stream
from tests.idlefleet.openadr.harness import (
    SITE,
    VEN_ID,
    lab,
    registered_ven,
    running_vtn,
    scenario_now,
    wait_until,
)

KAFKA_WAIT_S = 20.0


def dr_records(kafka: KafkaSettings) -> list[DemandResponseEvent]:
    """Every record on the DR topic, oldest first."""
    records: list[DemandResponseEvent] = []

    def keep(stream: Stream, message: Message) -> None:
        assert isinstance(message, DemandResponseEvent)
        records.append(message)

    reader = StreamReader(kafka, None, [Stream.DR_EVENTS], keep, None).start()
    try:
        assert reader.wait_caught_up(KAFKA_WAIT_S)
    finally:
        reader.stop()
    return records


def test_a_cancellation_after_a_restart_withdraws_the_caps_accepted_before(
    kafka_settings: KafkaSettings,
) -> None:
    publisher = Publisher(kafka_settings)

    def publish(cap: DemandResponseEvent) -> None:
        publisher.publish(Stream.DR_EVENTS, cap).get(timeout=KAFKA_WAIT_S)

    decider = PlanningDecider(scenario_now, publish, lambda site: 0.0, lambda site: 0.0)

    async def scenario() -> None:
        async with running_vtn() as vtn:
            async with registered_ven(lab(vtn.url), decider):
                event_id, answer = vtn.send(15.0)
                assert await asyncio.wait_for(answer, 30) == OPT_IN
            accepted = await asyncio.to_thread(read_caps_in_force, kafka_settings)
            assert list(accepted) == [event_id]
            async with registered_ven(lab(vtn.url), decider, accepted=accepted) as after:
                await wait_until(lambda: event_id in after.decisions)
                assert after.decisions[event_id].honour  # delivered again, caps in force
                vtn.server.cancel_event(VEN_ID, event_id)
                await wait_until(lambda: event_id not in after._caps)

    try:
        asyncio.run(scenario())
    finally:
        publisher.close()
    records = dr_records(kafka_settings)
    assert [(cap.max_import_kw, cap.cancelled) for cap in records] == [(15.0, False), (15.0, True)]
    assert records[0].event_id == records[1].event_id


def test_the_newest_record_of_a_cap_decides_and_foreign_caps_are_left_out() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)

    def cap(cap_id: str, cancelled: bool = False) -> DemandResponseEvent:
        return DemandResponseEvent(
            event_id=cap_id,
            site_id=SITE,
            start=start,
            end=start + timedelta(hours=1),
            max_import_kw=5.0,
            cancelled=cancelled,
        )

    kept, withdrawn = cap(f"e1:0:0:{SITE}"), cap(f"e2:0:0:{SITE}")
    records = [kept, withdrawn, cap(f"e2:0:0:{SITE}", cancelled=True), cap("api-cap")]
    assert caps_in_force(records) == {"e1": [kept]}
