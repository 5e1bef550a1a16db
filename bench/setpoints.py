"""How soon a car's set-point is applied while a shard runs: from the send to the charger call.

`idlefleet bench setpoints [--setpoints N --rows R]` runs a two-car agent service (as
`idlefleet agent` does) on the embedded broker with the real model of `bench executor`
(Magika on the Python standard library's files). While car-1 runs a shard of R files
(seconds of work on both cores), N set-point-only assignments for later slots, alternating
between car-1 and car-2, are published every 20 ms; each is timed from its send to the
charger call. Only those applied while the shard was running count.

Baseline, measured in the same run, on the same broker and agents: the same N set-points
with no work running. Last line: `setpoints=… busy_p50_s=… busy_p99_s=… idle_p99_s=…
ratio=…` (the busy p99 over the idle p99).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from bench.departure import WAIT_S, telemetry, until
from bench.executor import T0, assignment_for, real_file_shards
from executor.agent import AgentPool, VehicleAgent
from executor.pretrained import find_magika_model
from executor.runtime import OnnxRunner
from executor.service import AgentService
from streams.broker import EmbeddedBroker
from streams.clients import KafkaSettings, ensure_topics
from streams.messages import Assignment, ModelRef, WorkItem
from streams.producer import Publisher
from streams.topics import Stream

CARS = ("car-1", "car-2")
SLOT = timedelta(minutes=15)


class TimedCharger:
    """Records when each slot's set-point arrived [s, perf_counter] and whether car-1 was
    running its shard then."""

    def __init__(self, applied: dict[datetime, tuple[float, bool]]) -> None:
        self.applied = applied
        self.busy_agent: VehicleAgent | None = None
        self.changed = threading.Condition()

    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        now = time.perf_counter()
        busy = self.busy_agent is not None and self.busy_agent.running is not None
        with self.changed:
            self.applied[slot_start] = (now, busy)
            self.changed.notify_all()


def send_setpoints(
    publisher: Publisher, charger: TimedCharger, first_slot: int, count: int, interval_s: float
) -> tuple[list[float], int]:
    """Latencies [s] of `count` set-points from slot `first_slot` on, and how many of them
    were applied while car-1's shard ran."""
    sent: dict[datetime, float] = {}
    for k in range(count):
        start = T0 + (first_slot + k) * SLOT
        assignment = Assignment(
            assignment_id=f"s-{first_slot + k}",
            plan_id="bench",
            vehicle_id=CARS[k % len(CARS)],
            slot_start=start,
            slot_end=start + SLOT,
            charge_power_kw=7.0,
        )
        sent[start] = time.perf_counter()
        publisher.publish(Stream.ASSIGNMENTS, assignment)
        publisher.flush()
        time.sleep(interval_s)
    with charger.changed:
        if not charger.changed.wait_for(lambda: sent.keys() <= charger.applied.keys(), WAIT_S):
            raise TimeoutError(f"set-points not applied within {WAIT_S:.0f} s")
    applied = [charger.applied[start] for start in sent]
    latencies = [at - sent[start] for start, (at, _) in zip(sent, applied, strict=True)]
    return latencies, sum(busy for _, busy in applied)


def measure(
    count: int, long_shard: np.ndarray, workdir: Path, interval_s: float
) -> tuple[list[float], list[float]]:
    """Set-point latencies [s] with car-1's shard running (those applied while it ran), and
    with nothing running."""
    model = find_magika_model()
    path = workdir / "long.npy"
    np.save(path, long_shard, allow_pickle=False)
    (workdir / "out").mkdir()
    item = WorkItem(
        work_id="long",
        job_id="bench",
        shard_index=0,
        model=ModelRef(uri=model.path.as_uri(), sha256=model.sha256),
        input_uri=path.as_uri(),
        output_uri=(workdir / "out").as_uri(),
    )
    charger = TimedCharger({})
    runner = OnnxRunner()
    agents = [VehicleAgent(v, runner, charger, 0.3, clock=lambda: T0) for v in CARS]
    charger.busy_agent = agents[0]
    with EmbeddedBroker() as broker:
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        ensure_topics(settings)
        publisher = Publisher(settings)
        for vehicle_id in CARS:
            parked = telemetry(0, parked=True).model_copy(update={"vehicle_id": vehicle_id})
            publisher.publish(Stream.TELEMETRY, parked)
        publisher.flush()
        service = AgentService(
            settings,
            AgentPool(agents),
            spool_dir=workdir / "spool",
            clock=lambda: T0,
            trust=None,
        ).start()
        try:
            idle, _ = send_setpoints(publisher, charger, 1, count, interval_s)
            publisher.publish(Stream.ASSIGNMENTS, assignment_for(0, item))
            publisher.flush()
            until(lambda: agents[0].running == item.work_id, "the long shard's start")
            busy, while_running = send_setpoints(publisher, charger, count + 1, count, interval_s)
            if while_running < count:
                print(f"the shard ended early: {while_running} of {count} set-points count")
            busy = busy[:while_running]  # sent in order: those after the shard ended go
        finally:
            service.stop()
            publisher.close()
    return busy, idle


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench setpoints", description=__doc__)
    parser.add_argument("--setpoints", type=int, default=100)
    parser.add_argument("--rows", type=int, default=2000, help="files in the running shard")
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args(argv)

    [long_shard] = real_file_shards(1, args.rows)
    with tempfile.TemporaryDirectory() as workdir:
        busy, idle = measure(args.setpoints, long_shard, Path(workdir), args.interval_ms / 1000)
    if not busy:
        print("no set-point was applied while the shard ran: raise --rows")
        return 1
    busy_p50, busy_p99, idle_p99 = (
        statistics.median(busy),
        percentile(busy, 0.99),
        percentile(idle, 0.99),
    )
    print(
        f"send to charger over {len(busy)} set-points while a shard of {args.rows} files ran: "
        f"p50 {busy_p50 * 1000:.1f} ms, p99 {busy_p99 * 1000:.1f} ms; "
        f"with nothing running: p99 {idle_p99 * 1000:.1f} ms"
    )
    print(
        f"setpoints={len(busy)} busy_p50_s={busy_p50:.3f} busy_p99_s={busy_p99:.3f} "
        f"idle_p99_s={idle_p99:.3f} ratio={busy_p99 / idle_p99:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
