"""Looks at the service under load: its telemetry reader's lag, the process's RSS, and its
ticks at every slot boundary."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import datetime

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import TopicPartition

from bench.load.schedule import SLOT
from idlefleet.service.planner import PlannerService, TickReport
from idlefleet.sim.clock import ScaledClock
from streams.clients import KafkaSettings
from streams.topics import Stream


@dataclasses.dataclass(frozen=True)
class Sample:
    """One look at the service [records, bytes]: the telemetry published and committed as
    processed by the service's group, and the process's resident memory."""

    wall_s: float
    produced: int
    consumed: int
    lag_msgs: int
    rss_bytes: int


class LagProbe:
    """End offsets of the telemetry topic and the service group's committed offsets."""

    def __init__(self, kafka: KafkaSettings, group_id: str) -> None:
        self._group_id = group_id
        self._admin = KafkaAdminClient(**kafka.common_config())
        self._consumer = KafkaConsumer(**kafka.consumer_config())
        topic = kafka.topics.name(Stream.TELEMETRY)
        ids = sorted(self._consumer.partitions_for_topic(topic) or ())
        self._partitions = [TopicPartition(topic, partition) for partition in ids]

    def sample(self) -> Sample:
        ends = self._consumer.end_offsets(self._partitions)
        specs = {self._group_id: self._partitions}
        offsets = self._admin.list_group_offsets(specs)[self._group_id]
        committed = {tp: max(0, offsets[tp].offset) if tp in offsets else 0 for tp in ends}
        return Sample(
            wall_s=time.time(),
            produced=sum(ends.values()),
            consumed=sum(committed.values()),
            lag_msgs=sum(max(0, ends[tp] - committed[tp]) for tp in ends),
            rss_bytes=rss_bytes(),
        )

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()


def rss_bytes() -> int:
    """This process's resident set size [bytes] (VmRSS of /proc/self/status)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@dataclasses.dataclass(frozen=True)
class TickRecord:
    """One call of `service.tick`: its slot boundary, wall start [s since the epoch] and
    duration [s], and what it did."""

    boundary: datetime
    started_wall_s: float
    took_s: float
    report: TickReport


class Ticker:
    """Calls `service.tick` at every slot boundary of the service's time from `first`, on a
    thread of its own; boundaries passed while a tick ran are skipped and counted."""

    def __init__(self, service: PlannerService, clock: ScaledClock, first: datetime) -> None:
        self.records: list[TickRecord] = []
        self.skipped = 0
        self.failure: BaseException | None = None
        self._service = service
        self._clock = clock
        self._next = first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-ticker", daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 120.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            while not self._stop.wait(max(0.0, self._clock.wall_s(self._next) - time.time())):
                started_s = time.time()
                report = self._service.tick(self._next)
                self.records.append(
                    TickRecord(self._next, started_s, time.time() - started_s, report)
                )
                latest = self._clock.next_boundary(time.time(), SLOT) - SLOT
                following = max(self._next + SLOT, latest)
                self.skipped += round((following - self._next) / SLOT) - 1
                self._next = following
        except BaseException as exc:  # reported in the summary; the run fails
            self.failure = exc
