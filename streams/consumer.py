"""A background reader: poll, decode, check, hand to a handler, commit; bad records to dead letter.

Two kinds of reader:

- A **group member** (`group_id` given) reads the partitions the group assigns it. Delivery
  is at least once: offsets are committed only after the handler has run for every record
  of a poll and every dead letter of the poll is acknowledged. A record that does not
  decode, breaks a `RecordRules` rule, or that the handler rejects with `MessageError` is
  parked on the dead-letter topic with its reason: never dropped, never fatal. Partitions of
  `replay` streams that the member did not hold before are read again from the start, to
  rebuild state; below the committed offset nothing is dead-lettered again.
- A **replica** (`group_id=None`) reads every partition of its streams from the start, for
  state every worker needs. It commits nothing. Invalid records are skipped and counted,
  because the group member that owns their partition parks them; a valid record its
  handler fails on is dead-lettered when the replica has a publisher (no one else would).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import TopicPartition

from streams.clients import KafkaSettings, make_group_consumer, make_replica_consumer
from streams.errors import MessageError, PublishError
from streams.messages import Message
from streams.producer import MAX_REASON_CHARS, Publisher
from streams.serde import decode_as
from streams.topics import STREAM_SPECS, Stream
from streams.validation import RecordRules

log = logging.getLogger(__name__)

Handler = Callable[[Stream, Message], None]
#: How many of its newest dead letters a reader remembers (`StreamReader.recent_dead_letters`).
RECENT_DEAD_LETTERS = 100


@dataclass(frozen=True)
class DeadLetterNote:
    """A record a reader parked: when [UTC, wall clock], from which topic, its key (decoded,
    unreadable bytes replaced; None: no key), and why."""

    at: datetime
    topic: str
    key: str | None
    reason: str


@dataclass(frozen=True)
class PartitionAssignment:
    """The partitions a group member holds, and how many partitions each topic has."""

    owned: frozenset[TopicPartition]
    partition_counts: Mapping[str, int]

    def owned_partitions(self, topic: str) -> frozenset[int]:
        return frozenset(tp.partition for tp in self.owned if tp.topic == topic)


AssignmentHandler = Callable[[PartitionAssignment], None]


@dataclass
class _Barrier:
    """Released once the reader has processed everything published before it was made."""

    done: threading.Event = field(default_factory=threading.Event)
    targets: dict[TopicPartition, int] | None = None


@dataclass(frozen=True)
class CatchUp:
    """A reader's promise to have processed everything published before it was made."""

    reader: StreamReader
    barrier: _Barrier

    def wait(self, timeout_s: float) -> bool:
        """True once kept; False when `timeout_s` passes first or the reader has failed."""
        deadline = time.monotonic() + timeout_s
        released = False
        while not released and self.reader.failure is None and time.monotonic() < deadline:
            remaining_s = max(0.0, deadline - time.monotonic())
            released = self.barrier.done.wait(min(0.2, remaining_s))
        if not released:
            self.reader._forget(self.barrier)
        return released


class _Rebalance(ConsumerRebalanceListener):
    """Notes assignment changes; runs on kafka-python's IO thread, so it must not block."""

    def __init__(self, replay_topics: Collection[str]) -> None:
        self._replay_topics = set(replay_topics)
        self._lock = threading.Lock()
        self._held: set[TopicPartition] = set()
        self.changed: frozenset[TopicPartition] | None = None
        self.to_rewind: set[TopicPartition] = set()
        self.consumer: Any = None

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        with self._lock:
            self._held = set(revoked)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # Kept only what this very rebalance revoked and gave back; anything else (or after
        # losing the group without a revoke) may have moved meanwhile: read it again.
        with self._lock:
            kept, self._held = self._held, set()
        fresh = {tp for tp in assigned - kept if tp.topic in self._replay_topics}
        if fresh:
            self.consumer.pause(*fresh)  # rewound by the reader thread before they are read
        with self._lock:
            self.to_rewind = (self.to_rewind & assigned) | fresh
            self.changed = frozenset(assigned)

    def pending(self) -> bool:
        with self._lock:
            return self.changed is not None

    def take(self) -> tuple[frozenset[TopicPartition] | None, set[TopicPartition]]:
        with self._lock:
            changed, rewind = self.changed, self.to_rewind
            self.changed, self.to_rewind = None, set()
        return changed, rewind


class StreamReader:
    """Reads `streams` on a thread of its own: in group `group_id`, or as a replica (None)."""

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str | None,
        streams: Sequence[Stream],
        handler: Handler,
        publisher: Publisher | None,
        *,
        rules: RecordRules | None = None,
        replay: Collection[Stream] = (),
        on_assignment: AssignmentHandler | None = None,
        poll_timeout_ms: int = 100,
        only_keys: Collection[bytes] | None = None,
    ) -> None:
        if group_id is not None and publisher is None:
            raise ValueError("a group member needs a publisher for its dead letters")
        if group_id is not None and only_keys is not None:
            raise ValueError("a group member parks what it owns: it cannot skip keys")
        if group_id is None and (replay or on_assignment is not None):
            raise ValueError("a replica reads everything from the start and owns nothing")
        self._settings = settings
        self._group_id = group_id
        self._topics = settings.topics
        self._names = [self._topics.name(stream) for stream in streams]
        self._handler = handler
        self._publisher = publisher
        self._rules = rules or RecordRules()
        self._replay_names = {self._topics.name(stream) for stream in replay}
        self._on_assignment = on_assignment
        self._poll_timeout_ms = poll_timeout_ms
        # a replica that reads only some keys (a car agent: its cars) skips the rest unread
        self._only_keys = None if only_keys is None else frozenset(only_keys)
        self._stop = threading.Event()
        self._barriers: list[_Barrier] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._replay_until: dict[TopicPartition, int] = {}
        self._assigned = group_id is None  # a replica holds its partitions from the start
        self.records_processed = 0
        self.records_dead_lettered = 0
        self._recent_dead_letters: deque[DeadLetterNote] = deque(maxlen=RECENT_DEAD_LETTERS)
        #: Records published but not yet read on the partitions held [count] (None: unknown).
        self.lag_records: int | None = None
        self.records_invalid = 0
        self.failure: BaseException | None = None

    @property
    def name(self) -> str:
        return self._group_id or "replica"

    def recent_dead_letters(self) -> tuple[DeadLetterNote, ...]:
        """The newest `RECENT_DEAD_LETTERS` records this reader parked, oldest first."""
        with self._lock:
            return tuple(self._recent_dead_letters)

    def start(self) -> StreamReader:
        self._thread = threading.Thread(target=self._run, name=f"reader-{self.name}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def mark(self) -> CatchUp:
        """A mark that is released once every record published before now is processed."""
        barrier = _Barrier()
        with self._lock:
            self._barriers.append(barrier)
        return CatchUp(self, barrier)

    def wait_caught_up(self, timeout_s: float = 30.0) -> bool:
        """Block until every record published before this call has been processed.

        False when `timeout_s` passes first, or the reader has stopped with a failure.
        """
        return self.mark().wait(timeout_s)

    def _forget(self, barrier: _Barrier) -> None:
        with self._lock:
            if barrier in self._barriers:
                self._barriers.remove(barrier)

    # -- the reader thread --------------------------------------------------------------
    def _run(self) -> None:
        rebalance = _Rebalance(self._replay_names)
        try:
            if self._group_id is None:
                consumer = make_replica_consumer(self._settings, self._names)
            else:
                consumer = make_group_consumer(
                    self._settings, self._group_id, self._names, rebalance
                )
                rebalance.consumer = consumer
        except BaseException as exc:
            self.failure = exc
            log.exception("reader %s could not start", self.name)
            raise
        try:
            while not self._stop.is_set():
                try:
                    self._poll_once(consumer, rebalance)
                except KafkaError as exc:
                    log.warning("reader %s: %s; retrying", self.name, exc)
                    time.sleep(0.5)
        except BaseException as exc:  # a bug or lost dead letters: surface it to whoever waits
            self.failure = exc
            log.exception("reader %s stopped", self.name)
            raise
        finally:
            consumer.close(autocommit=False)

    def _poll_once(self, consumer: Any, rebalance: _Rebalance) -> None:
        # Someone waits for a catch-up: look again soon rather than idle a whole poll.
        timeout_ms = min(self._poll_timeout_ms, 10) if self._barriers else self._poll_timeout_ms
        batches = consumer.poll(timeout_ms=timeout_ms)
        changed, rewind = rebalance.take()
        if rewind:
            for tp in rewind:
                self._replay_until[tp] = consumer.committed(tp) or 0
            consumer.seek_to_beginning(*rewind)
            consumer.resume(*rewind)
        if changed is not None:
            self._assigned = True
            if self._on_assignment is not None:
                counts = {name: len(consumer.partitions_for_topic(name)) for name in self._names}
                self._on_assignment(PartitionAssignment(changed, counts))
        if batches:
            letters: list[FutureRecordMetadata] = []
            for tp, records in batches.items():
                self._process(tp, records, letters)
            for letter in letters:
                try:
                    letter.get(timeout=self._settings.delivery_timeout_ms / 1000)
                except KafkaError as exc:
                    raise PublishError(f"dead letter not delivered: {exc}") from exc
            if self._group_id is not None:
                consumer.commit()
        self.lag_records = _lag_records(consumer)  # before a barrier lets a waiter read it
        if not rebalance.pending():
            self._release_barriers(consumer)

    def _process(
        self, tp: TopicPartition, records: list[Any], letters: list[FutureRecordMetadata]
    ) -> None:
        stream = self._topics.stream_of(tp.topic)
        message_type = STREAM_SPECS[stream].message_type
        assert message_type is not None, f"{stream} carries no typed messages"
        check, handler = self._rules.checker(stream), self._handler
        replay_until = self._replay_until.get(tp, 0) if self._group_id is not None else None
        only_keys = self._only_keys
        for record in records:
            if only_keys is not None and record.key not in only_keys:
                continue
            handled = False
            try:
                writer = self._rules.authenticate(stream, record.key, record.value, record.headers)
                message = decode_as(message_type, record.value)
                check(message, record.key, writer)
                handled = True
                handler(stream, message)
                continue
            except MessageError as exc:
                reason = exc.reason
            except Exception as exc:  # a record the handler cannot process must not stop us
                log.exception("handler failed on %s[%d]@%d", tp.topic, tp.partition, record.offset)
                reason = f"handler error: {type(exc).__name__}: {exc}"
            if replay_until is None and handled and self._publisher is not None:
                # a replica's handler failed on a valid record: no group member parks it
                letters.append(self._dead_letter(record, f"replica {reason}"))
            elif replay_until is None or record.offset < replay_until:
                self.records_invalid += 1  # parked by the group member that owns it, or earlier
            else:
                letters.append(self._dead_letter(record, reason))
        self.records_processed += len(records)

    def _dead_letter(self, record: Any, reason: str) -> FutureRecordMetadata:
        assert self._publisher is not None
        self.records_dead_lettered += 1
        key = None if record.key is None else record.key.decode(errors="replace")
        note = DeadLetterNote(datetime.now(UTC), record.topic, key, reason[:MAX_REASON_CHARS])
        with self._lock:
            self._recent_dead_letters.append(note)
        return self._publisher.dead_letter(
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
        if not pending or not self._assigned:
            return
        assigned = consumer.assignment()
        for barrier in pending:
            if barrier.targets is None or set(barrier.targets) != assigned:
                barrier.targets = consumer.end_offsets(list(assigned)) if assigned else {}
            if all(consumer.position(tp) >= end for tp, end in barrier.targets.items()):
                with self._lock:
                    self._barriers.remove(barrier)
                barrier.done.set()


def _lag_records(consumer: Any) -> int | None:
    """Records behind the broker's high watermark on the partitions held, from what the last
    fetches told (no request of its own); None while a partition's watermark is unknown."""
    lag = 0
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is None:
            return None
        lag += max(0, highwater - consumer.position(tp))
    return lag
