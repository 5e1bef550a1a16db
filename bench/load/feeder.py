"""The telemetry process: every car reports once before the first plan, then the cars report
in turn on a steady schedule through the load phase."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from multiprocessing.connection import Connection

from bench.load.gateway import Gateway
from bench.load.schedule import ORIGIN, Schedule
from idlefleet.sim.fleet import SimulatedCar
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.producer import Publisher
from streams.topics import Stream

#: Every car reports once this long before the first plan [service time].
PRIME_LEAD = timedelta(minutes=1)


@dataclasses.dataclass(frozen=True)
class FeedStats:
    """What the telemetry process did in the load phase: reports sent, over how long [s],
    how far it fell behind its schedule at worst [s], set points the cars refused."""

    sent: int
    seconds: float
    behind_max_s: float
    refused: int


def feed_telemetry(
    kafka: KafkaSettings, fleet: list[SimulatedCar], interval_s: float, conn: Connection
) -> None:
    """The telemetry process: every car reports once, then, on the schedule it is sent,
    every `interval_s` seconds each; sends back its FeedStats."""
    gateway = Gateway(fleet)
    publisher = Publisher(kafka)
    reader = StreamReader(kafka, None, [Stream.ASSIGNMENTS], gateway.on_assignment, None).start()
    try:
        primed = ORIGIN - PRIME_LEAD
        for car in fleet:
            publisher.publish(Stream.TELEMETRY, gateway.report(car, primed))
        publisher.flush()
        conn.send("primed")
        schedule: Schedule = conn.recv()
        conn.send(report_steadily(publisher, gateway, fleet, schedule, interval_s))
    finally:
        reader.stop()
        publisher.close()


def report_steadily(
    publisher: Publisher,
    gateway: Gateway,
    fleet: list[SimulatedCar],
    schedule: Schedule,
    interval_s: float,
) -> FeedStats:
    """One report every `interval_s / len(fleet)` seconds, the cars in turn, through the load
    phase; flushed every second (a failed send raises)."""
    spacing_s = interval_s / len(fleet)
    total = int((schedule.end_wall_s - schedule.load_wall_s) / spacing_s)
    behind_max_s, flushed_s = 0.0, time.time()
    for index in range(total):
        due_s = schedule.load_wall_s + index * spacing_s
        delay_s = due_s - time.time()
        if delay_s > 0:
            time.sleep(delay_s)
        else:
            behind_max_s = max(behind_max_s, -delay_s)
        car = fleet[index % len(fleet)]
        publisher.publish(Stream.TELEMETRY, gateway.report(car, schedule.clock()))
        if time.time() - flushed_s >= 1.0:
            publisher.flush()
            flushed_s = time.time()
    publisher.flush()
    return FeedStats(total, time.time() - schedule.load_wall_s, behind_max_s, gateway.refused)
