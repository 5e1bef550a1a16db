"""The reader on the real broker: valid records reach the handler, bad ones dead-letter."""

from __future__ import annotations

import itertools
from datetime import timedelta

from kafka import KafkaConsumer, KafkaProducer

from streams.catalog import T0
from streams.clients import KafkaSettings
from streams.consumer import RECENT_DEAD_LETTERS, StreamReader
from streams.errors import MessageError
from streams.messages import Message, Telemetry
from streams.producer import Publisher
from streams.topics import Stream
from tests.streams.factories import telemetry


def send_undecodable(settings: KafkaSettings, key: bytes) -> None:
    """A telemetry record that is not JSON, sent past the typed publisher."""
    raw = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    raw.send(settings.topics.name(Stream.TELEMETRY), key=key, value=b"{oops")
    raw.flush()
    raw.close()


def read_dead_letters(settings: KafkaSettings, count: int) -> list[dict[str, bytes | None]]:
    consumer = KafkaConsumer(
        settings.topics.name(Stream.DEAD_LETTER),
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    letters = []
    for record in consumer:
        letters.append({**{k: v for k, v in record.headers}, "value": record.value})
        if len(letters) == count:
            break
    consumer.close()
    return letters


def test_valid_records_are_handled_and_bad_ones_dead_lettered(
    kafka_settings: KafkaSettings,
) -> None:
    received: list[Message] = []

    def handler(stream: Stream, message: Message) -> None:
        assert stream is Stream.TELEMETRY
        if isinstance(message, Telemetry) and message.vehicle_id == "car-poison":
            raise MessageError("vehicle car-poison is not registered")
        received.append(message)

    publisher = Publisher(kafka_settings)
    reader = StreamReader(
        kafka_settings, "test-service", [Stream.TELEMETRY], handler, publisher
    ).start()
    try:
        good = [
            telemetry(vehicle_id=f"car-{i}", event_time=T0 + timedelta(minutes=i)) for i in range(5)
        ]
        for message in good:
            publisher.publish(Stream.TELEMETRY, message)
        publisher.publish(Stream.TELEMETRY, telemetry(vehicle_id="car-poison"))
        send_undecodable(kafka_settings, b"car-x")
        publisher.flush()
        assert reader.wait_caught_up(timeout_s=30)
        assert sorted(m.vehicle_id for m in received if isinstance(m, Telemetry)) == [
            f"car-{i}" for i in range(5)
        ]
        assert reader.records_dead_lettered == 2
        publisher.flush()
        letters = read_dead_letters(kafka_settings, 2)
        reasons = sorted(str(letter["reason"]) for letter in letters)
        assert any("invalid Telemetry" in reason for reason in reasons)
        assert any("car-poison is not registered" in reason for reason in reasons)
        for letter in letters:
            assert letter["source_topic"] == kafka_settings.topics.name(Stream.TELEMETRY).encode()
            assert letter["source_offset"] is not None
        assert {letter["value"] for letter in letters} >= {b"{oops"}
    finally:
        reader.stop()
        publisher.close()
    assert reader.failure is None


def test_a_restarted_reader_resumes_after_its_committed_offsets(
    kafka_settings: KafkaSettings,
) -> None:
    seen: list[str] = []

    def handler(stream: Stream, message: Message) -> None:
        assert isinstance(message, Telemetry)
        seen.append(message.vehicle_id)

    publisher = Publisher(kafka_settings)
    publisher.publish(Stream.TELEMETRY, telemetry(vehicle_id="car-a"))
    publisher.flush()
    first = StreamReader(kafka_settings, "resume", [Stream.TELEMETRY], handler, publisher).start()
    assert first.wait_caught_up(timeout_s=30)
    first.stop()
    publisher.publish(Stream.TELEMETRY, telemetry(vehicle_id="car-b"))
    publisher.flush()
    second = StreamReader(kafka_settings, "resume", [Stream.TELEMETRY], handler, publisher).start()
    assert second.wait_caught_up(timeout_s=30)
    second.stop()
    publisher.close()
    assert seen == ["car-a", "car-b"]


def test_a_replica_dead_letters_a_valid_record_its_handler_fails_on(
    kafka_settings: KafkaSettings,
) -> None:
    """No group member parks what a replica's own handler cannot take: the replica does.
    Records that break the rules are still only skipped (their owner parks them)."""

    def handler(stream: Stream, message: Message) -> None:
        if isinstance(message, Telemetry) and message.vehicle_id == "car-poison":
            raise ValueError("cannot fold this report")

    publisher = Publisher(kafka_settings)
    reader = StreamReader(kafka_settings, None, [Stream.TELEMETRY], handler, publisher).start()
    try:
        publisher.publish(Stream.TELEMETRY, telemetry(vehicle_id="car-1"))
        publisher.publish(Stream.TELEMETRY, telemetry(vehicle_id="car-poison"))
        send_undecodable(kafka_settings, b"car-x")
        publisher.flush()
        assert reader.wait_caught_up(timeout_s=30)
        assert (reader.records_dead_lettered, reader.records_invalid) == (1, 1)
        [letter] = read_dead_letters(kafka_settings, 1)
        assert letter["reason"] == b"replica handler error: ValueError: cannot fold this report"
    finally:
        reader.stop()
        publisher.close()


def test_a_replica_that_reads_some_keys_skips_the_rest_unread(
    kafka_settings: KafkaSettings,
) -> None:
    """A car agent reads only its cars' records: the others are not even decoded or checked."""
    seen: list[str] = []

    def handler(stream: Stream, message: Message) -> None:
        assert isinstance(message, Telemetry)
        seen.append(message.vehicle_id)

    publisher = Publisher(kafka_settings)
    reader = StreamReader(
        kafka_settings, None, [Stream.TELEMETRY], handler, None, only_keys=[b"car-1"]
    ).start()
    try:
        for car in ("car-1", "car-2", "car-1"):
            publisher.publish(Stream.TELEMETRY, telemetry(vehicle_id=car))
        send_undecodable(kafka_settings, b"car-2")
        publisher.flush()
        assert reader.wait_caught_up(timeout_s=30)
        assert seen == ["car-1", "car-1"] and reader.records_invalid == 0
    finally:
        reader.stop()
        publisher.close()


def test_a_reader_remembers_its_newest_dead_letters_and_its_lag(
    kafka_settings: KafkaSettings,
) -> None:
    """The last RECENT_DEAD_LETTERS parked records, oldest first, with topic, key and reason;
    once caught up the reader lags by nothing."""
    publisher = Publisher(kafka_settings)
    reader = StreamReader(
        kafka_settings, "ring", [Stream.TELEMETRY], lambda stream, message: None, publisher
    ).start()
    total = RECENT_DEAD_LETTERS + 5
    raw = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    topic = kafka_settings.topics.name(Stream.TELEMETRY)
    try:
        for i in range(total):
            raw.send(topic, key=f"car-{i:03d}".encode(), value=b"{oops", partition=0)
        raw.flush()
        assert reader.wait_caught_up(timeout_s=30)
        notes = reader.recent_dead_letters()
        assert reader.records_dead_lettered == total
        assert [note.key for note in notes] == [f"car-{i:03d}" for i in range(5, total)]
        assert all(note.topic == topic and "invalid Telemetry" in note.reason for note in notes)
        assert all(a.at <= b.at for a, b in itertools.pairwise(notes))
        assert reader.lag_records == 0
    finally:
        raw.close()
        reader.stop()
        publisher.close()
    assert reader.failure is None
