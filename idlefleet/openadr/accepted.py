"""The caps the VEN has accepted, rebuilt from the DR topic, so a restart forgets none.

The topic is the VEN's memory: every cap it accepts is published there, and every cap it
withdraws is published again, cancelled. Folding the topic from its start gives, per OpenADR
event, the caps still in force; a cancellation after a restart withdraws exactly those.
"""

from __future__ import annotations

from collections.abc import Iterable

from idlefleet.openadr.mapping import event_id_of
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.messages import DemandResponseEvent, Message
from streams.topics import Stream
from streams.validation import RecordRules

#: How long the VEN may take to read the DR topic at start [s].
CATCH_UP_TIMEOUT_S = 60.0


class AcceptedCapsError(RuntimeError):
    """The DR topic could not be read to its end: the VEN must not start without its caps."""


def caps_in_force(records: Iterable[DemandResponseEvent]) -> dict[str, list[DemandResponseEvent]]:
    """The VEN's caps still in force by OpenADR event id, from DR records oldest first.

    The newest record of a cap id wins; a cancelled one removes the cap. Caps not made by the
    VEN (`mapping.cap_id`) are left out.
    """
    latest: dict[str, DemandResponseEvent] = {}
    for record in records:
        latest.pop(record.event_id, None)
        if not record.cancelled:
            latest[record.event_id] = record
    by_event: dict[str, list[DemandResponseEvent]] = {}
    for cap in latest.values():
        event_id = event_id_of(cap)
        if event_id is not None:
            by_event.setdefault(event_id, []).append(cap)
    return by_event


def read_caps_in_force(
    kafka: KafkaSettings,
    rules: RecordRules | None = None,
    timeout_s: float = CATCH_UP_TIMEOUT_S,
) -> dict[str, list[DemandResponseEvent]]:
    """Read the DR topic from its start (a replica reader) and fold it (`caps_in_force`);
    with `rules`, only records that keep them (a writer the registry proves) count."""
    records: list[DemandResponseEvent] = []

    def keep(stream: Stream, message: Message) -> None:
        assert isinstance(message, DemandResponseEvent)
        records.append(message)

    reader = StreamReader(kafka, None, [Stream.DR_EVENTS], keep, None, rules=rules).start()
    try:
        if not reader.wait_caught_up(timeout_s):
            raise AcceptedCapsError(
                f"the DR topic was not read to its end within {timeout_s:.0f} s"
                + (f": {reader.failure}" if reader.failure else "")
            )
    finally:
        reader.stop()
    return caps_in_force(records)
