"""The bridge on the real broker: fleet-telemetry records produced as the server produces them
become signed measured state the planner's rules accept, or dead letters with their reasons;
committed offsets keep a restart from bridging a record twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from confluent_kafka import Producer as ConfluentProducer
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from kafka.structs import TopicPartition

from idlefleet.bridges.fleet_telemetry import FleetTelemetryBridge, telemetry_topic
from idlefleet.bridges.proto_gen.tesla import vehicle_data_pb2 as pb
from idlefleet.bridges.runner import (
    BridgeRunner,
    UnreadableSourceError,
    default_group_id,
    registry_vins,
)
from idlefleet.commands.bridge import PRINCIPAL
from idlefleet.sites import load_sites
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.messages import MeasuredState, Message, VehicleRecord
from streams.serde import decode
from streams.state import FleetState
from streams.topics import Stream
from tests.idlefleet.bridges.payloads import (
    BERLIN,
    SITES_JSON,
    VIN,
    at,
    binary,
    datum,
    entry,
    protojson,
    record,
)
from tests.streams import factories

WAIT_S = 30.0
VIN_B = "5YJ3E1EA7KF000002"
VIN_RETIRED = "5YJ3E1EA7KF000003"
VIN_UNKNOWN = "WAUZZZ8V1KA000042"
SITES = load_sites(SITES_JSON)


@pytest.fixture
def world(kafka_settings: KafkaSettings) -> Iterator[factories.World]:
    """The planner (writes the registry) and the bridge (an adapter), enrolled; three cars
    in the registry, one of them retired."""
    world = factories.World(kafka_settings, {"planner": "service", PRINCIPAL: "adapter"})
    world.publish(
        [
            entry("car-a", VIN, home_site_id="berlin-depot"),
            entry("car-b", VIN_B, home_site_id="london-depot"),
            entry("car-r", VIN_RETIRED, retired=True),
        ],
        "planner",
    )
    yield world
    world.stop()


@pytest.fixture
def namespace(kafka_settings: KafkaSettings) -> str:
    """A fleet-telemetry namespace of the test's own, its `<namespace>_V` with 2 partitions."""
    namespace = f"{kafka_settings.topic_prefix}-tesla"
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(telemetry_topic(namespace), 2, 1)])
    finally:
        admin.close()
    return namespace


@dataclass(frozen=True)
class Sent:
    """A raw record as fleet-telemetry produced it, and where it landed."""

    key: bytes
    value: bytes
    partition: int
    offset: int


def produce(
    kafka: KafkaSettings, topic: str, records: list[tuple[str, bytes]], compression: str = "gzip"
) -> list[Sent]:
    """Produce (VIN, value) records as fleet-telemetry does: with librdkafka (which its Go
    client wraps), keyed by VIN, without idlefleet's proof, gzip as in its sample config."""
    producer = ConfluentProducer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "compression.type": compression,
            "queue.buffering.max.ms": 50,
            "acks": "all",
        }
    )
    sent: dict[int, Sent] = {}
    errors: list[object] = []

    def delivered(index: int, error: object, message: Any) -> None:
        if error is not None:
            errors.append(error)
            return
        sent[index] = Sent(message.key(), message.value(), message.partition(), message.offset())

    for index, (vin, value) in enumerate(records):
        producer.produce(
            topic,
            key=vin.encode(),
            value=value,
            on_delivery=partial(delivered, index),
        )
    assert producer.flush(WAIT_S) == 0 and not errors, errors
    return [sent[index] for index in range(len(records))]


def now() -> datetime:
    return datetime.now(UTC)


class Running:
    """A bridge runner on a thread of its own, as the command runs it."""

    def __init__(self, world: factories.World, namespace: str) -> None:
        self.kafka = world.kafka
        self.topic = telemetry_topic(namespace)
        self.group_id = default_group_id(self.kafka.topic_prefix, self.topic)
        self._trust = world.trust(PRINCIPAL).start()
        self._publisher = self._trust.publisher()
        self._stop = threading.Event()
        self._exit = ExitStack()
        vins = self._exit.enter_context(registry_vins(self.kafka, self._trust.rules()))
        bridge = FleetTelemetryBridge(vins, SITES)
        self.runner = BridgeRunner(self.kafka, self.topic, self.group_id, bridge, self._publisher)
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.runner.run(self._stop)
        except BaseException as exc:  # kept for the test to look at
            self.failure = exc

    def wait_for(self, measured: int, dead_lettered: int, sent: list[Sent]) -> None:
        """Until the runner has made this many records, and committed every record `sent`.

        (Not against `end_offsets`: the embedded broker reports a partition's end as its last
        batch's base offset + 1, short of the end when that batch holds several records.)
        """
        counts = self.runner.counts
        ends = {
            p: 1 + max((s.offset for s in sent if s.partition == p), default=-1) for p in (0, 1)
        }
        wait_until(
            lambda: (
                (counts.measured, counts.dead_lettered) == (measured, dead_lettered)
                and self.committed() == ends
            ),
            f"{measured} measured and {dead_lettered} dead letters, committed",
        )

    def committed(self) -> dict[int, int]:
        consumer = KafkaConsumer(
            bootstrap_servers=self.kafka.bootstrap_servers, group_id=self.group_id
        )
        try:
            return {p: consumer.committed(TopicPartition(self.topic, p)) or 0 for p in (0, 1)}
        finally:
            consumer.close(autocommit=False)

    def stop(self) -> BaseException | None:
        """Stop the runner; what it failed with, if it did."""
        self._stop.set()
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive()
        self._exit.close()
        self._publisher.close()
        return self.failure


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s"
        time.sleep(0.05)


def read_topic(
    kafka: KafkaSettings, stream: Stream, count: int
) -> list[tuple[dict[str, bytes], bytes]]:
    """The first `count` records of an idlefleet topic: (headers, value)."""
    consumer = KafkaConsumer(
        kafka.topics.name(stream),
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=int(WAIT_S * 1000),
    )
    found = []
    try:
        for record in consumer:
            found.append((dict(record.headers), record.value))
            if len(found) == count:
                break
    finally:
        consumer.close()
    assert len(found) == count
    return found


class PlannerView:
    """What the planner service does with the registry and the streams the bridge writes:
    every record checked with the service's rules (writer, key, known sites, date), then
    applied to fleet state. A replica, so no group join; it counts what fails the rules."""

    def __init__(self, world: factories.World) -> None:
        self.state = FleetState()
        trust = world.trust("planner").start()
        self.reader = StreamReader(
            world.kafka,
            None,
            [Stream.MEASURED_STATE, Stream.FLEET_REGISTRY],
            self._apply,
            None,
            rules=trust.rules(site_ids=[site.site_id for site in SITES], clock=now),
        ).start()

    def _apply(self, stream: Stream, message: Message) -> None:
        if isinstance(message, MeasuredState):
            self.state.apply_measured(message)
        elif isinstance(message, VehicleRecord):
            self.state.apply_record(message)

    def stop(self) -> None:
        self.reader.stop()


def test_records_become_measured_state_of_the_registered_car_and_the_rest_dead_letters(
    world: factories.World, namespace: str
) -> None:
    fresh = now() - timedelta(seconds=5)
    car_a = record(
        datum(pb.BatteryLevel, double_value=81.5),
        datum(pb.ACChargingPower, float_value=11.0),
        datum(pb.DetailedChargeState, detailed_charge_state_value=pb.DetailedChargeStateCharging),
        at(*BERLIN),
        created=fresh,
    )
    car_b = record(
        datum(pb.EnergyRemaining, string_value="40.000"),
        datum(pb.DetailedChargeState, string_value="DetailedChargeStateDisconnected"),
        datum(pb.Location, string_value="(51.507000 N, 0.128000 W)"),
        vin=VIN_B,
        created=fresh,
    )
    soc = datum(pb.BatteryLevel, double_value=50.0)
    sent = produce(
        world.kafka,
        telemetry_topic(namespace),
        [
            (VIN, binary(car_a)),
            (VIN_B, protojson(car_b)),
            (VIN, b"\xff\xff\xff"),
            (VIN_UNKNOWN, binary(record(soc, vin=VIN_UNKNOWN, created=fresh))),
            (VIN_RETIRED, binary(record(soc, vin=VIN_RETIRED, created=fresh))),
            (VIN, protojson(record(datum(pb.BatteryLevel, double_value=120.0), created=fresh))),
        ],
    )
    running = Running(world, namespace)
    try:
        running.wait_for(measured=2, dead_lettered=4, sent=sent)
    finally:
        assert running.stop() is None

    planner = PlannerView(world)
    try:
        assert planner.reader.wait_caught_up(WAIT_S)
        assert planner.reader.records_invalid == 0  # signed, keyed, known sites, dated
        a, b = planner.state.vehicles["car-a"], planner.state.vehicles["car-b"]
    finally:
        planner.stop()
    assert (a.site_id, a.plugged_in) == ("berlin-depot", True)
    assert a.energy_kwh == pytest.approx(0.815 * 75.0)  # soc of the 75 kWh battery
    assert a.event_time == fresh
    assert (b.site_id, b.plugged_in, b.energy_kwh) == ("london-depot", False, 40.0)
    assert planner.state.data_note("car-a").energy_source == "reading"  # type: ignore[union-attr]

    measured = [
        decode(Stream.MEASURED_STATE, value)
        for _, value in read_topic(world.kafka, Stream.MEASURED_STATE, 2)
    ]
    assert {m.source for m in measured if isinstance(m, MeasuredState)} == {"fleet-telemetry"}

    reasons: dict[tuple[int, int], str] = {}
    for headers, value in read_topic(world.kafka, Stream.DEAD_LETTER, 4):
        assert headers["source_topic"] == telemetry_topic(namespace).encode()
        where = int(headers["source_partition"]), int(headers["source_offset"])
        reasons[where] = headers["reason"].decode()
        assert value == next(s.value for s in sent if (s.partition, s.offset) == where)
    malformed, unknown, retired, out_of_range = (reasons[s.partition, s.offset] for s in sent[2:])
    assert len(reasons) == 4
    assert malformed.startswith("malformed protobuf Payload")
    assert (unknown, retired) == ("unknown VIN WAU…0042", "unknown VIN 5YJ…0003")
    assert out_of_range.startswith("out of range: BatteryLevel 120 pct")


def test_a_restarted_bridge_resumes_after_its_committed_offsets(
    world: factories.World, namespace: str
) -> None:
    topic = telemetry_topic(namespace)

    def reading(level: float, vin: str = VIN) -> tuple[str, bytes]:
        payload = record(datum(pb.BatteryLevel, double_value=level), vin=vin, created=now())
        return vin, binary(payload)

    sent = produce(world.kafka, topic, [reading(60.0), reading(61.0, VIN_B)])
    first = Running(world, namespace)
    try:
        first.wait_for(measured=2, dead_lettered=0, sent=sent)
    finally:
        assert first.stop() is None
    sent += produce(world.kafka, topic, [reading(62.0), (VIN, b"\x00garbage")])
    second = Running(world, namespace)
    try:  # only what came after the first run
        second.wait_for(measured=1, dead_lettered=1, sent=sent)
    finally:
        assert second.stop() is None
    # the counts are exact: a re-read first record would have made 2 measured more
    read_topic(world.kafka, Stream.MEASURED_STATE, 3)
    assert read_topic(world.kafka, Stream.DEAD_LETTER, 1)[0][0]["source_offset"] is not None


def test_records_compressed_with_a_codec_not_installed_stop_the_bridge_with_the_fix(
    world: factories.World, namespace: str
) -> None:
    """kafka-python reads gzip here, not snappy, lz4 or zstd: a fleet-telemetry sending those
    is misconfigured, and the bridge says so rather than retry for ever."""
    payload = binary(record(datum(pb.BatteryLevel, int_value=50), created=now()))
    produce(world.kafka, telemetry_topic(namespace), [(VIN, payload)], compression="snappy")
    running = Running(world, namespace)
    try:
        wait_until(lambda: running.failure is not None, "failure")
    finally:
        failure = running.stop()
    assert isinstance(failure, UnreadableSourceError)
    assert "snappy" in str(failure) and "compression.type gzip or none" in str(failure)
    assert running.committed() == {0: 0, 1: 0}
