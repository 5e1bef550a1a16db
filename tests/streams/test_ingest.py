"""Ingestion on the real broker: bad records dead-lettered with their origin, duplicates and late
records changing nothing, replays not dead-lettering twice, and another client interoperating."""

from __future__ import annotations

import json
from datetime import timedelta

from confluent_kafka import Producer as ConfluentProducer
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from streams.catalog import EXAMPLES, T0
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.messages import Job, Message, Telemetry
from streams.partitioning import stable_partition
from streams.producer import MAX_DEAD_LETTER_VALUE_BYTES, Publisher
from streams.serde import MAX_MESSAGE_BYTES, encode
from streams.state import FleetEvent, FleetEventKind, FleetState
from streams.topics import STREAM_SPECS, Stream
from streams.validation import RecordRules
from tests.streams.factories import telemetry
from tests.streams.test_reader import read_dead_letters

SITES = ("berlin-depot", "london-depot")


def _payload(**changes: object) -> bytes:
    fields = json.loads(encode(EXAMPLES[Stream.TELEMETRY]))
    fields.update(changes)
    return json.dumps({k: v for k, v in fields.items() if v is not _DROP}).encode()


_DROP = object()

#: (what is wrong, key, value, a phrase the dead letter's reason must hold)
MALFORMED = [
    ("bad json", b"car-001", b'{"vehicle_id": "car-001", oops', "invalid json"),
    ("wrong type", b"car-001", _payload(energy_kwh="lots"), "energy_kwh"),
    ("missing field", b"car-001", _payload(battery_kwh=_DROP), "battery_kwh: field required"),
    ("negative energy", b"car-001", _payload(energy_kwh=-5.0), "energy_kwh"),
    ("energy above battery", b"car-001", _payload(energy_kwh=80.0), "exceeds battery_kwh"),
    ("unknown site", b"car-001", _payload(site_id="paris-depot"), "unknown site 'paris-depot'"),
    ("key of another car", b"car-999", _payload(), "does not match vehicle_id"),
    ("tombstone", b"car-001", None, "empty payload"),
    ("huge", b"car-001", b"{" + b" " * (MAX_MESSAGE_BYTES + 10) + b"}", "exceeds"),
]


def test_malformed_records_are_dead_lettered_with_their_origin(
    kafka_settings: KafkaSettings,
) -> None:
    topic = kafka_settings.topics.name(Stream.TELEMETRY)
    raw = KafkaProducer(
        bootstrap_servers=kafka_settings.bootstrap_servers, max_request_size=4 * MAX_MESSAGE_BYTES
    )
    origin = {}
    for what, key, value, phrase in MALFORMED:
        metadata = raw.send(topic, key=key, value=value).get(timeout=10)
        origin[(metadata.partition, metadata.offset)] = (what, phrase)
    for car in ("car-001", "car-002"):
        raw.send(topic, key=car.encode(), value=_payload(vehicle_id=car)).get(timeout=10)
    raw.close()

    received: list[Message] = []
    publisher = Publisher(kafka_settings)
    reader = StreamReader(
        kafka_settings,
        "ingest",
        [Stream.TELEMETRY],
        lambda stream, message: received.append(message),
        publisher,
        rules=RecordRules(SITES),
    ).start()
    try:
        assert reader.wait_caught_up(timeout_s=30)
    finally:
        reader.stop()
        publisher.close()
    assert reader.failure is None
    assert sorted(m.vehicle_id for m in received if isinstance(m, Telemetry)) == [
        "car-001",
        "car-002",
    ]
    assert reader.records_dead_lettered == len(MALFORMED)
    letters = read_dead_letters(kafka_settings, len(MALFORMED))
    assert len(letters) == len(MALFORMED)
    for letter in letters:
        assert letter["source_topic"] == topic.encode()
        source = (int(letter["source_partition"] or b""), int(letter["source_offset"] or b""))
        what, phrase = origin.pop(source)
        assert phrase in str(letter["reason"]).lower(), what
        if what == "huge":
            assert letter["value_truncated_from_bytes"] == str(MAX_MESSAGE_BYTES + 12).encode()
            assert len(letter["value"] or b"") == MAX_DEAD_LETTER_VALUE_BYTES
    assert not origin


def test_duplicate_and_late_telemetry_never_roll_state_back(kafka_settings: KafkaSettings) -> None:
    at = [T0 + timedelta(minutes=minute) for minute in range(4)]
    reports = [
        telemetry(event_time=at[1], energy_kwh=31.0),
        telemetry(event_time=at[2], energy_kwh=32.0),
        telemetry(event_time=at[0], energy_kwh=20.0, site_id="london-depot"),  # late
        telemetry(event_time=at[2], energy_kwh=32.0),  # duplicate
        telemetry(event_time=at[3], energy_kwh=33.0, site_id=None, plugged_in=False),
        telemetry(event_time=at[1], energy_kwh=31.0),  # late duplicate
    ]
    publisher = Publisher(kafka_settings)
    for report in reports:
        publisher.publish(Stream.TELEMETRY, report)
    publisher.flush()
    publisher.close()

    state = FleetState()
    events: list[FleetEvent] = []

    def fold(stream: Stream, message: Message) -> None:
        assert isinstance(message, Telemetry)
        events.extend(state.apply_telemetry(message))

    for _ in range(2):  # the second pass is a replay of everything: it changes nothing
        reader = StreamReader(kafka_settings, None, [Stream.TELEMETRY], fold, None).start()
        assert reader.wait_caught_up(timeout_s=30)
        reader.stop()
        assert state.vehicles["car-001"] == reports[4]
        assert [event.kind for event in events] == [
            FleetEventKind.ARRIVED,
            FleetEventKind.PLUGGED_IN,
            FleetEventKind.DEPARTED,
            FleetEventKind.UNPLUGGED,
        ]


def test_a_new_member_replays_telemetry_but_dead_letters_only_new_records(
    kafka_settings: KafkaSettings,
) -> None:
    topic = kafka_settings.topics.name(Stream.TELEMETRY)
    raw = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    raw.send(topic, key=b"car-001", value=_payload(), partition=0).get(timeout=10)
    raw.send(topic, key=b"car-001", value=b"{broken", partition=0).get(timeout=10)
    seen: list[Message] = []
    publisher = Publisher(kafka_settings)

    def member() -> StreamReader:
        return StreamReader(
            kafka_settings,
            "replaying",
            [Stream.TELEMETRY],
            lambda stream, message: seen.append(message),
            publisher,
            replay=[Stream.TELEMETRY],
        ).start()

    try:
        first = member()
        assert first.wait_caught_up(timeout_s=30)
        first.stop()
        second = member()  # same group: resumes after the commit, but rebuilds state first
        assert second.wait_caught_up(timeout_s=30)
        raw.send(topic, key=b"car-001", value=b"{broken again", partition=0).get(timeout=10)
        assert second.wait_caught_up(timeout_s=30)
        second.stop()
    finally:
        raw.close()
        publisher.close()
    assert len(seen) == 2  # the good record, read by each member
    assert (first.records_dead_lettered, second.records_dead_lettered) == (1, 1)
    assert second.records_invalid == 1  # the old bad record: parked once, by the first member
    letters = read_dead_letters(kafka_settings, 2)
    assert [letter["source_offset"] for letter in letters] == [b"1", b"2"]


def test_records_from_confluent_kafka_are_read_like_our_own(kafka_settings: KafkaSettings) -> None:
    producer = ConfluentProducer(
        {
            "bootstrap.servers": kafka_settings.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            # Java's key partitioner, as kafka-python uses; librdkafka's default differs.
            "partitioner": "murmur2_random",
        }
    )
    report = telemetry(vehicle_id="car-c1")
    job = EXAMPLES[Stream.JOBS]
    assert isinstance(job, Job)
    partitions = STREAM_SPECS[Stream.TELEMETRY].partitions
    producer.produce(
        kafka_settings.topics.name(Stream.TELEMETRY),
        key=b"car-c1",
        value=encode(report),
        partition=stable_partition("berlin-depot", partitions),
    )
    producer.produce(kafka_settings.topics.name(Stream.JOBS), key=b"embed-1", value=encode(job))
    assert producer.flush(10) == 0

    received: list[Message] = []
    reader = StreamReader(
        kafka_settings,
        None,
        [Stream.TELEMETRY, Stream.JOBS],
        lambda stream, message: received.append(message),
        None,
        rules=RecordRules(SITES),
    ).start()
    assert reader.wait_caught_up(timeout_s=30)
    reader.stop()
    assert sorted(received, key=lambda m: type(m).__name__) == [job, report]
    assert reader.records_invalid == 0


def test_a_car_that_moves_is_reported_on_both_sites_partitions(
    kafka_settings: KafkaSettings,
) -> None:
    publisher = Publisher(kafka_settings)
    for minute, site in enumerate(["berlin-depot", "london-depot"]):
        publisher.publish(
            Stream.TELEMETRY, telemetry(event_time=T0 + timedelta(minutes=minute), site_id=site)
        )
    publisher.flush()
    publisher.close()
    topic = kafka_settings.topics.name(Stream.TELEMETRY)
    consumer = KafkaConsumer(**kafka_settings.consumer_config(), consumer_timeout_ms=5000)
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    landed = []
    for record in consumer:
        landed.append((record.partition, json.loads(record.value)["site_id"]))
        if len(landed) == 3:
            break
    consumer.close()
    partitions = STREAM_SPECS[Stream.TELEMETRY].partitions
    berlin, london = (stable_partition(s, partitions) for s in ("berlin-depot", "london-depot"))
    assert berlin != london
    assert sorted(landed) == sorted(
        [(berlin, "berlin-depot"), (london, "london-depot"), (berlin, "london-depot")]
    )
