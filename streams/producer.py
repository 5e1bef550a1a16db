"""Publishing typed messages, and raw records to the dead-letter topic.

The producer is idempotent with `acks=all` (streams.clients); it retries retriable errors
by itself until the delivery timeout. Whatever still fails reaches the caller: a send that
fails at once raises `PublishError`, and `flush()` raises `PublishError` for any send
since the last flush that failed later. A producer kafka-python declares unusable (a fatal
error, such as a producer-id bump the broker refuses after an outage longer than the
delivery timeout) is closed, and the next send starts a new one.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from streams.clients import KafkaSettings, make_producer
from streams.errors import PublishError
from streams.messages import Message, Telemetry
from streams.partitioning import TelemetryRouter
from streams.serde import MAX_MESSAGE_BYTES, encode, key_of
from streams.topics import STREAM_SPECS, Stream

log = logging.getLogger(__name__)


class Signer(Protocol):
    """Makes the headers that prove who wrote a record (streams.signing)."""

    def headers(
        self, stream: Stream, message: Message, key: bytes | None, value: bytes
    ) -> list[tuple[str, bytes]]: ...


#: A dead letter keeps at most this much of the record it parks [bytes].
MAX_DEAD_LETTER_VALUE_BYTES = MAX_MESSAGE_BYTES // 10
#: Dead-letter reasons are cut to this length [characters].
MAX_REASON_CHARS = 1000


class Publisher:
    """Publishes messages keyed as their stream says; connects on first use.

    Telemetry goes to its site's partition (streams.partitioning); other streams are
    partitioned by key. With a `signer`, every record carries its writer's proof.
    """

    def __init__(self, settings: KafkaSettings, signer: Signer | None = None) -> None:
        self._settings = settings
        self._signer = signer
        self._topics = settings.topics
        self._producer: Any = None
        self._producer_lock = threading.Lock()  # one producer at a time
        self._router: TelemetryRouter | None = None
        self._failures: list[BaseException] = []
        self._failures_lock = threading.Lock()

    def _client(self) -> Any:
        with self._producer_lock:
            if _has_fatal_error(self._producer):
                log.warning("the Kafka producer hit a fatal error; starting a new one")
                self._producer.close()  # at once: a fatal error fails all its sends
                self._producer = None
            if self._producer is None:
                self._producer = make_producer(self._settings)
            return self._producer

    def publish(self, stream: Stream, message: Message) -> FutureRecordMetadata:
        """Send `message` on `stream`; it must be the stream's message type.

        PublishError, before anything is sent, for a message of more than MAX_MESSAGE_BYTES:
        every reader would dead-letter it.
        """
        expected = STREAM_SPECS[stream].message_type
        if expected is None or not isinstance(message, expected):
            raise TypeError(f"{stream.value} carries {expected}, not {type(message).__name__}")
        topic = self._topics.name(stream)
        key, value = key_of(stream, message), encode(message)
        if len(value) > MAX_MESSAGE_BYTES:
            raise PublishError(
                f"{type(message).__name__} for {topic} is {len(value)} bytes, more than the "
                f"{MAX_MESSAGE_BYTES} readers accept"
            )
        headers = (
            None if self._signer is None else self._signer.headers(stream, message, key, value)
        )
        if not isinstance(message, Telemetry):
            return self._send(topic, key, value, None, headers)
        partitions = self._telemetry_router(topic).partitions_for(message)
        futures = [self._send(topic, key, value, partition, headers) for partition in partitions]
        return futures[0]

    def _telemetry_router(self, topic: str) -> TelemetryRouter:
        if self._router is None:
            self._router = TelemetryRouter(len(self._client().partitions_for(topic)))
        return self._router

    def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None,
        headers: list[tuple[str, bytes]] | None,
    ) -> FutureRecordMetadata:
        try:
            future: FutureRecordMetadata = self._client().send(
                topic, key=key, value=value, partition=partition, headers=headers
            )
        except KafkaError as exc:
            raise PublishError(f"cannot send to {topic}: {exc}") from exc
        future.add_errback(self._record_failure)
        return future

    def _record_failure(self, exc: BaseException) -> None:
        with self._failures_lock:
            self._failures.append(exc)

    def dead_letter(
        self,
        *,
        reason: str,
        source_topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
    ) -> FutureRecordMetadata:
        """Park a record that could not be processed, with headers that say why and whence.

        A value longer than MAX_DEAD_LETTER_VALUE_BYTES keeps its head, and the header
        `value_truncated_from_bytes` gives its full size. The caller waits on the returned
        future before it commits the source offset.
        """
        reason = reason[:MAX_REASON_CHARS]
        log.warning("dead letter from %s[%d]@%d: %s", source_topic, partition, offset, reason)
        headers = [
            ("reason", reason.encode()),
            ("source_topic", source_topic.encode()),
            ("source_partition", str(partition).encode()),
            ("source_offset", str(offset).encode()),
        ]
        if value is not None and len(value) > MAX_DEAD_LETTER_VALUE_BYTES:
            headers.append(("value_truncated_from_bytes", str(len(value)).encode()))
            value = value[:MAX_DEAD_LETTER_VALUE_BYTES]
        topic = self._topics.name(Stream.DEAD_LETTER)
        try:
            future: FutureRecordMetadata = self._client().send(
                topic, key=key, value=value, headers=headers
            )
        except KafkaError as exc:
            raise PublishError(f"cannot send to {topic}: {exc}") from exc
        return future

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every send; PublishError if any since the last flush failed."""
        if self._producer is not None:
            self._producer.flush(timeout=timeout_s)
        with self._failures_lock:
            failures, self._failures = self._failures, []
        if failures:
            raise PublishError(
                f"{len(failures)} record(s) not delivered; first: {failures[0]}"
            ) from failures[0]

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None


def _has_fatal_error(producer: Any) -> bool:
    """kafka-python fails every later send of a producer in this state."""
    manager = getattr(producer, "_transaction_manager", None)
    return manager is not None and bool(manager.has_fatal_error())
