"""Publishing typed messages, and raw records to the dead-letter topic."""

from __future__ import annotations

import logging
from typing import Any

from kafka.producer.future import FutureRecordMetadata

from streams.clients import KafkaSettings, make_producer
from streams.messages import Message
from streams.serde import encode, key_of
from streams.topics import STREAM_SPECS, Stream

log = logging.getLogger(__name__)


class Publisher:
    """Publishes messages keyed as their stream says; connects on first use."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._topics = settings.topics
        self._producer: Any = None

    def _client(self) -> Any:
        if self._producer is None:
            self._producer = make_producer(self._settings)
        return self._producer

    def publish(self, stream: Stream, message: Message) -> FutureRecordMetadata:
        """Send `message` on `stream`; it must be the stream's message type."""
        expected = STREAM_SPECS[stream].message_type
        if expected is None or not isinstance(message, expected):
            raise TypeError(f"{stream.value} carries {expected}, not {type(message).__name__}")
        future: FutureRecordMetadata = self._client().send(
            self._topics.name(stream), key=key_of(stream, message), value=encode(message)
        )
        return future

    def dead_letter(
        self,
        *,
        reason: str,
        source_topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
    ) -> None:
        """Park a record that could not be processed, with headers that say why and whence."""
        log.warning("dead letter from %s[%d]@%d: %s", source_topic, partition, offset, reason)
        headers = [
            ("reason", reason.encode()),
            ("source_topic", source_topic.encode()),
            ("source_partition", str(partition).encode()),
            ("source_offset", str(offset).encode()),
        ]
        self._client().send(
            self._topics.name(Stream.DEAD_LETTER), key=key, value=value, headers=headers
        )

    def flush(self, timeout_s: float | None = None) -> None:
        if self._producer is not None:
            self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None
