"""Telemetry through the embedded broker into fleet state, against a raw kafka-python consumer.

`idlefleet bench ingest [--messages N] [--vehicles V] [--rounds R]` starts the embedded
broker, publishes N telemetry reports of V cars at a few sites (site-partitioned, as the
service expects), then reads them back in the same run, R times each way:

- raw: a kafka-python consumer with the same fetch settings that only counts the records;
- ingest: the service's group reader (streams.consumer.StreamReader) that decodes and
  validates every record (schema, key, known site) and folds it into FleetState.

A rate runs from the first record to the last one [msgs/s]; the best round of each counts.
The last line reads `ingest_msgs_per_s=… raw_msgs_per_s=… ratio=…`.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from datetime import timedelta

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from streams.broker import EmbeddedBroker
from streams.catalog import EXAMPLES
from streams.clients import KafkaSettings, ensure_topics
from streams.consumer import StreamReader
from streams.messages import Message, Telemetry
from streams.producer import Publisher, Signer
from streams.state import FleetState
from streams.topics import Stream
from streams.validation import RecordRules

SITES = tuple(f"depot-{index}" for index in range(6))


def publish_telemetry(
    settings: KafkaSettings, messages: int, vehicles: int, signer: Signer | None = None
) -> None:
    """`messages` reports of `vehicles` cars, each car's newer than its last (signed by the
    cars when `signer` holds their keys)."""
    example = EXAMPLES[Stream.TELEMETRY]
    assert isinstance(example, Telemetry)
    publisher = Publisher(settings, signer)
    try:
        for index in range(messages):
            car = index % vehicles
            report = example.model_copy(
                update={
                    "vehicle_id": car_id(car),
                    "site_id": SITES[car % len(SITES)],
                    "event_time": example.event_time + timedelta(seconds=index // vehicles),
                    "energy_kwh": 20.0 + (index % 40),
                }
            )
            publisher.publish(Stream.TELEMETRY, report)
        publisher.flush()
    finally:
        publisher.close()


def car_id(index: int) -> str:
    return f"car-{index:06d}"


def raw_rate(settings: KafkaSettings, messages: int) -> float:
    """Records per second a bare kafka-python consumer reads (same fetch settings) [1/s]."""
    topic = settings.topics.name(Stream.TELEMETRY)
    consumer = KafkaConsumer(**settings.consumer_config())
    try:
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
        consumer.seek_to_beginning()
        seen, started = 0, 0.0
        while seen < messages:
            batches = consumer.poll(timeout_ms=1000)
            if batches and not seen:
                started = time.perf_counter()
            seen += sum(len(records) for records in batches.values())
        return messages / (time.perf_counter() - started)
    finally:
        consumer.close()


def ingest_rate(settings: KafkaSettings, messages: int, rules: RecordRules | None = None) -> float:
    """Records per second the service's reader decodes, checks with `rules` and folds into
    state [1/s]."""
    state = FleetState()
    done = threading.Event()
    seen = 0
    started = finished = 0.0

    def fold(stream: Stream, message: Message) -> None:
        nonlocal seen, started, finished
        if not seen:
            started = time.perf_counter()
        assert isinstance(message, Telemetry)
        state.apply_telemetry(message)
        seen += 1
        if seen == messages:
            finished = time.perf_counter()
            done.set()

    publisher = Publisher(settings)
    reader = StreamReader(
        settings,
        f"bench-ingest-{uuid.uuid4().hex[:8]}",
        [Stream.TELEMETRY],
        fold,
        publisher,
        rules=rules or RecordRules(SITES),
        replay=[Stream.TELEMETRY],
    ).start()
    try:
        if not done.wait(timeout=600):
            raise RuntimeError(f"ingest read {seen} of {messages} records")
    finally:
        reader.stop()
        publisher.close()
    if reader.records_dead_lettered:
        raise RuntimeError(f"{reader.records_dead_lettered} records dead-lettered")
    return messages / (finished - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench ingest", description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with EmbeddedBroker() as broker:
        settings = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"bench{uuid.uuid4().hex[:8]}"
        )
        ensure_topics(settings)
        started = time.perf_counter()
        publish_telemetry(settings, args.messages, args.vehicles)
        print(f"published {args.messages} reports in {time.perf_counter() - started:.1f} s")
        raw, ours = 0.0, 0.0
        for round_index in range(args.rounds):
            raw_round = raw_rate(settings, args.messages)
            ours_round = ingest_rate(settings, args.messages)
            print(f"round {round_index + 1}: ingest {ours_round:.0f}/s, raw {raw_round:.0f}/s")
            raw, ours = max(raw, raw_round), max(ours, ours_round)
    print(f"ingest_msgs_per_s={ours:.0f} raw_msgs_per_s={raw:.0f} ratio={ours / raw:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
