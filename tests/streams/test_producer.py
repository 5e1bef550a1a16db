"""The publisher refuses what no broker or reader would take, and keeps working after."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from streams.catalog import EXAMPLES
from streams.clients import KafkaSettings
from streams.errors import PublishError
from streams.messages import Job
from streams.producer import Publisher
from streams.serde import MAX_MESSAGE_BYTES, encode
from streams.topics import Stream


def test_a_send_that_cannot_succeed_raises_to_the_caller(kafka_settings: KafkaSettings) -> None:
    job = EXAMPLES[Stream.JOBS]
    assert isinstance(job, Job)
    uris = [f"file:///{'x' * 1900}/{n}" for n in range(600)]  # over 1 MB: no broker takes it
    too_big = job.model_copy(update={"input_uris": uris})
    publisher = Publisher(kafka_settings)
    try:
        with pytest.raises(PublishError, match=kafka_settings.topics.name(Stream.JOBS)):
            publisher.publish(Stream.JOBS, too_big)
        publisher.publish(Stream.JOBS, job).get(timeout=10)  # the publisher still works
        publisher.flush()
    finally:
        publisher.close()


def test_a_message_no_reader_would_take_is_never_sent(kafka_settings: KafkaSettings) -> None:
    example = EXAMPLES[Stream.JOBS]
    assert isinstance(example, Job)
    uri = "file:///srv/in/" + "x" * 1_975
    big = example.model_copy(update={"input_uris": [f"{uri}{i:05d}" for i in range(505)]})
    assert MAX_MESSAGE_BYTES < len(encode(big)) < 1_048_576  # under kafka-python's own limit
    publisher = Publisher(kafka_settings)
    try:
        with pytest.raises(PublishError, match=f"more than the {MAX_MESSAGE_BYTES} readers"):
            publisher.publish(Stream.JOBS, big)
        publisher.publish(Stream.JOBS, example).get(timeout=10)
        publisher.flush()
    finally:
        publisher.close()
    topic = kafka_settings.topics.name(Stream.JOBS)
    consumer = KafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(3)])
    finally:
        consumer.close()
    assert sum(ends.values()) == 1  # the example only
