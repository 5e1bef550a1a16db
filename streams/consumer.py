"""A background reader: poll, decode, hand to a handler, commit; bad records to dead letter.

Delivery is at least once: offsets are committed only after the handler has run for
every record of a poll. A record that does not decode, or that the handler rejects
with `MessageError`, is parked on the dead-letter topic with its reason, never dropped
and never fatal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from streams.clients import KafkaSettings, make_consumer
from streams.errors import MessageError
from streams.messages import Message
from streams.producer import Publisher
from streams.serde import decode
from streams.topics import Stream

log = logging.getLogger(__name__)

Handler = Callable[[Stream, Message], None]


@dataclass
class _Barrier:
    """Released once the reader has processed everything published before it was made."""

    done: threading.Event = field(default_factory=threading.Event)
    targets: dict[TopicPartition, int] | None = None


class StreamReader:
    """Reads `streams` in consumer group `group_id` on a thread of its own."""

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        streams: Sequence[Stream],
        handler: Handler,
        publisher: Publisher,
        poll_timeout_ms: int = 100,
    ) -> None:
        self._settings = settings
        self._group_id = group_id
        self._topics = settings.topics
        self._names = [self._topics.name(stream) for stream in streams]
        self._handler = handler
        self._publisher = publisher
        self._poll_timeout_ms = poll_timeout_ms
        self._stop = threading.Event()
        self._barriers: list[_Barrier] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.records_processed = 0
        self.records_dead_lettered = 0
        self.failure: BaseException | None = None

    def start(self) -> StreamReader:
        self._thread = threading.Thread(target=self._run, name=f"reader-{self._group_id}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def wait_caught_up(self, timeout_s: float = 30.0) -> bool:
        """Block until every record published before this call has been processed."""
        barrier = _Barrier()
        with self._lock:
            self._barriers.append(barrier)
        released = barrier.done.wait(timeout_s)
        if not released:
            with self._lock:
                if barrier in self._barriers:
                    self._barriers.remove(barrier)
        return released

    def _run(self) -> None:
        consumer = make_consumer(self._settings, self._group_id, self._names)
        try:
            while not self._stop.is_set():
                try:
                    batches = consumer.poll(timeout_ms=self._poll_timeout_ms)
                    if batches:
                        for records in batches.values():
                            for record in records:
                                self._process(record)
                        consumer.commit()
                    self._release_barriers(consumer)
                except KafkaError as exc:
                    log.warning("reader %s: %s; retrying", self._group_id, exc)
                    time.sleep(0.5)
        except BaseException as exc:  # a bug: surface it to whoever waits on the reader
            self.failure = exc
            log.exception("reader %s stopped", self._group_id)
            raise
        finally:
            consumer.close(autocommit=False)

    def _process(self, record: Any) -> None:
        try:
            stream = self._topics.stream_of(record.topic)
            self._handler(stream, decode(stream, record.value))
        except MessageError as exc:
            self._dead_letter(record, exc.reason)
        except Exception as exc:  # a record the handler cannot process must not stop the reader
            log.exception(
                "handler failed on %s[%d]@%d", record.topic, record.partition, record.offset
            )
            self._dead_letter(record, f"handler error: {type(exc).__name__}: {exc}")
        self.records_processed += 1

    def _dead_letter(self, record: Any, reason: str) -> None:
        self.records_dead_lettered += 1
        self._publisher.dead_letter(
            reason=reason,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
        )

    def _release_barriers(self, consumer: Any) -> None:
        with self._lock:
            pending = list(self._barriers)
        if not pending:
            return
        assigned = consumer.assignment()
        if not assigned:
            return
        for barrier in pending:
            if barrier.targets is None or not set(barrier.targets) <= assigned:
                barrier.targets = consumer.end_offsets(list(assigned))
            if all(consumer.position(tp) >= end for tp, end in barrier.targets.items()):
                with self._lock:
                    self._barriers.remove(barrier)
                barrier.done.set()
