"""Running a bridge on Kafka: a maker's raw records in, signed measured state or dead letters out.

A maker's records (fleet-telemetry's ``<namespace>_V``) are not idlefleet's signed messages.
`BridgeRunner` reads them with a plain consumer in a consumer group, hands each record to the
bridge, and publishes what the bridge makes of it: a `MeasuredState` on the measured-state
topic, signed by the publisher's (adapter) identity, or a dead letter with its reason and the
record's topic, partition and offset (`streams.producer.Publisher.dead_letter`). Offsets are
committed once everything made from a poll is acknowledged: delivery is at least once, and a
record published twice is harmless (the planner keeps each field's newest value by event
time). A record the bridge fails on is a dead letter too. Only a publish that fails, or
records compressed with a codec kafka-python cannot read here (only gzip is installed), stop
the runner, with nothing of that poll committed.

`registry_vins` reads the fleet registry from the start (every entry checked against the
registry of keys) into the `VinDirectory` the bridge looks VINs up in, and keeps it current.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener
from kafka.errors import KafkaError, UnsupportedCodecError
from kafka.producer.future import FutureRecordMetadata

from idlefleet.bridges.measured import BridgeResult, DeadLetter, Measured
from idlefleet.bridges.vins import VinDirectory
from streams.clients import KafkaSettings, make_group_consumer
from streams.consumer import StreamReader
from streams.errors import PublishError, StreamsError
from streams.messages import Message, VehicleRecord
from streams.producer import Publisher
from streams.topics import Stream
from streams.validation import RecordRules

log = logging.getLogger(__name__)


class UnreadableSourceError(StreamsError):
    """The source topic's records cannot be read here, whatever the retries."""


class RecordBridge(Protocol):
    """One maker's records to measured state (`FleetTelemetryBridge` is one)."""

    def bridge(self, key: bytes | None, value: bytes | None, *, now: datetime) -> BridgeResult: ...


@dataclass
class BridgeCounts:
    """What a runner has done since it started [records]."""

    measured: int = 0
    dead_lettered: int = 0


def default_group_id(topic_prefix: str, source_topic: str) -> str:
    """The consumer group that bridges `source_topic` for the fleet under `topic_prefix`."""
    return f"{topic_prefix}.bridge.{source_topic}"


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class _LogAssignment(ConsumerRebalanceListener):
    """Logs the partitions of the source topic this member holds."""

    def on_partitions_revoked(self, revoked: set[Any]) -> None:
        pass

    def on_partitions_assigned(self, assigned: set[Any]) -> None:
        log.info("bridging partitions %s", sorted(tp.partition for tp in assigned))


class BridgeRunner:
    """Bridges `source_topic` in consumer group `group_id` until told to stop."""

    def __init__(
        self,
        kafka: KafkaSettings,
        source_topic: str,
        group_id: str,
        bridge: RecordBridge,
        publisher: Publisher,
        *,
        clock: Callable[[], datetime] = _wall_clock,
        poll_timeout_ms: int = 200,
    ) -> None:
        self._kafka = kafka
        self._topic = source_topic
        self._group_id = group_id
        self._bridge = bridge
        self._publisher = publisher
        self._clock = clock
        self._poll_timeout_ms = poll_timeout_ms
        self.counts = BridgeCounts()

    def run(self, stop: threading.Event) -> BridgeCounts:
        """Bridge records until `stop` is set; the poll in hand is finished and committed.

        PublishError when a record made cannot be delivered (nothing of its poll is
        committed, so a restart bridges it again); UnreadableSourceError when the source's
        records are compressed with a codec not installed.
        """
        consumer = make_group_consumer(self._kafka, self._group_id, [self._topic], _LogAssignment())
        try:
            if not consumer.partitions_for_topic(self._topic):
                log.warning("topic %s does not exist yet; waiting for its records", self._topic)
            while not stop.is_set():
                try:
                    self._poll_once(consumer)
                except UnsupportedCodecError as exc:
                    raise UnreadableSourceError(
                        f"{self._topic}: {exc}; have its producer compress with gzip or not at "
                        "all (librdkafka: compression.type gzip or none)"
                    ) from exc
                except KafkaError as exc:  # a rebalance or a broker away (not PublishError)
                    log.warning("bridge of %s: %s; retrying", self._topic, exc)
                    stop.wait(0.5)
        finally:
            consumer.close(autocommit=False)
        return self.counts

    def _poll_once(self, consumer: Any) -> None:
        batches = consumer.poll(timeout_ms=self._poll_timeout_ms)
        if not batches:
            return
        now = self._clock()
        sent = [self._forward(record, now) for records in batches.values() for record in records]
        for future in sent:
            try:
                future.get(timeout=self._kafka.delivery_timeout_ms / 1000)
            except KafkaError as exc:
                raise PublishError(f"bridged record not delivered: {exc}") from exc
        consumer.commit()

    def _forward(self, record: Any, now: datetime) -> FutureRecordMetadata:
        """Publish what the bridge makes of `record`: its measured state or a dead letter."""
        try:
            result = self._bridge.bridge(record.key, record.value, now=now)
        except Exception as exc:  # a record the bridge cannot process must not stop us
            log.exception(
                "bridge failed on %s[%d]@%d", record.topic, record.partition, record.offset
            )
            result = DeadLetter(" ".join(f"bridge error: {type(exc).__name__}: {exc}".split()))
        if isinstance(result, Measured):
            self.counts.measured += 1
            return self._publisher.publish(Stream.MEASURED_STATE, result.state)
        self.counts.dead_lettered += 1
        return self._publisher.dead_letter(
            reason=result.reason,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
        )


@contextmanager
def registry_vins(
    kafka: KafkaSettings, rules: RecordRules, catch_up_timeout_s: float = 30.0
) -> Iterator[VinDirectory]:
    """The fleet registry's VINs, read up to now before the block runs and kept current in it.

    `rules` check each entry (`Trust.rules()`: only a service may write the registry); an
    entry that fails them is skipped, and the planner service, which owns the topic's
    partitions, parks it. TimeoutError when the registry cannot be read in time.
    """
    directory = VinDirectory()

    def take(stream: Stream, message: Message) -> None:
        if isinstance(message, VehicleRecord):
            directory.apply(message)

    reader = StreamReader(kafka, None, [Stream.FLEET_REGISTRY], take, None, rules=rules).start()
    try:
        if not reader.wait_caught_up(catch_up_timeout_s):
            raise TimeoutError(
                f"the fleet registry was not read within {catch_up_timeout_s:g} s"
                + (f": {reader.failure}" if reader.failure else "")
            )
        yield directory
    finally:
        reader.stop()
