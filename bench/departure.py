"""How fast a departing car stops its shard: from the telemetry saying it left to its result.

`idlefleet bench departure [--departures N --rows R]` runs one car's agent service (as
`idlefleet agent` does) on the embedded broker with the real model of `bench executor`
(Magika on the Python standard library's files). Each round it dispatches a shard of R files
(seconds of work), waits until the agent runs it, publishes telemetry saying the car departed
and times until the agent's failed result arrives on the results topic: the stop latency.

Baseline, measured in the same run, on the same broker and agent, alternating with the
departures: a shard of one file dispatched to the parked car, timed from the assignment's send
to its done result (the same two hops, telemetry or assignment in and result out, with no
stop). Last line: `departures=… stop_p50_s=… stop_max_s=… round_trip_p50_s=… ratio=…`
(the stop's p50 over the round trip's).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np

from bench.executor import T0, NullCharger, assignment_for, real_file_shards
from executor.agent import AgentPool, VehicleAgent
from executor.pretrained import find_magika_model
from executor.runtime import OnnxRunner
from executor.service import AgentService
from streams.broker import EmbeddedBroker
from streams.clients import KafkaSettings, ensure_topics
from streams.consumer import StreamReader
from streams.messages import Message, ModelRef, Result, Telemetry, WorkItem
from streams.producer import Publisher
from streams.topics import Stream

CAR = "car-1"
WAIT_S = 60.0


class Results:
    """Results as the results topic delivers them, with the moment each was handed over."""

    def __init__(self) -> None:
        self._arrived: dict[str, tuple[float, Result]] = {}
        self._changed = threading.Condition()

    def on_message(self, stream: Stream, message: Message) -> None:
        assert isinstance(message, Result)
        with self._changed:
            self._arrived[message.work_id] = (time.perf_counter(), message)
            self._changed.notify_all()

    def wait(self, work_id: str) -> tuple[float, Result]:
        with self._changed:
            if not self._changed.wait_for(lambda: work_id in self._arrived, WAIT_S):
                raise TimeoutError(f"no result for {work_id} in {WAIT_S:.0f} s")
            return self._arrived[work_id]


def telemetry(seconds: int, parked: bool) -> Telemetry:
    """The car at the depot (or gone) `seconds` after T0; later reports supersede earlier."""
    return Telemetry(
        vehicle_id=CAR,
        event_time=T0 + timedelta(seconds=seconds),
        site_id="depot" if parked else None,
        plugged_in=parked,
        energy_kwh=50.0,
        battery_kwh=75.0,
        target_kwh=50.0,
        charger_kw=11.0,
        compute_kw=0.3,
    )


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {WAIT_S:.0f} s")
        time.sleep(0.005)


def running(agent: VehicleAgent, work_id: str) -> Callable[[], bool]:
    return lambda: agent.running == work_id


def measure(rounds: int, long_shard: np.ndarray, workdir: Path) -> tuple[list[float], list[float]]:
    """Stop latencies after a departure and one-file round trips [s], `rounds` of each."""
    model = find_magika_model()
    ref = ModelRef(uri=model.path.as_uri(), sha256=model.sha256)
    paths = {"long": workdir / "long.npy", "one": workdir / "one.npy"}
    np.save(paths["long"], long_shard, allow_pickle=False)
    np.save(paths["one"], long_shard[:1], allow_pickle=False)
    (workdir / "out").mkdir()
    agent = VehicleAgent(CAR, OnnxRunner(), NullCharger(), compute_kw=0.3, clock=lambda: T0)
    results = Results()
    stops: list[float] = []
    round_trips: list[float] = []
    with EmbeddedBroker() as broker:
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        ensure_topics(settings)
        publisher = Publisher(settings)
        reader = StreamReader(settings, None, [Stream.RESULTS], results.on_message, None).start()
        publisher.publish(Stream.TELEMETRY, telemetry(0, parked=True)).get(timeout=10)
        service = AgentService(
            settings,
            AgentPool([agent]),
            spool_dir=workdir / "spool",
            clock=lambda: T0,
            trust=None,
        ).start()
        try:
            for index in range(2 * rounds + 1):  # round 0 warms the model and both paths
                shard = "one" if index % 2 == 0 else "long"
                item = WorkItem(
                    work_id=f"w-{index}",
                    job_id="bench",
                    shard_index=index,
                    model=ref,
                    input_uri=paths[shard].as_uri(),
                    output_uri=(workdir / "out").as_uri(),
                )
                publisher.publish(Stream.TELEMETRY, telemetry(2 * index + 1, parked=True))
                publisher.flush()
                until(lambda: agent.stopped_reason is None, "the car's return")
                sent = time.perf_counter()
                publisher.publish(Stream.ASSIGNMENTS, assignment_for(index, item))
                publisher.flush()
                if shard == "one":
                    arrived, result = results.wait(item.work_id)
                    assert result.status == "done", result.reason
                    if index > 0:
                        round_trips.append(arrived - sent)
                    continue
                until(running(agent, item.work_id), "the shard's start")
                time.sleep(0.5)  # well into the shard
                departed = time.perf_counter()
                publisher.publish(Stream.TELEMETRY, telemetry(2 * index + 2, parked=False))
                publisher.flush()
                arrived, result = results.wait(item.work_id)
                assert result.status == "failed" and "departed" in (result.reason or "")
                stops.append(arrived - departed)
        finally:
            service.stop()
            reader.stop()
            publisher.close()
    return stops, round_trips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench departure", description=__doc__)
    parser.add_argument("--departures", type=int, default=10)
    parser.add_argument("--rows", type=int, default=1000, help="files in the long shard")
    args = parser.parse_args(argv)

    [long_shard] = real_file_shards(1, args.rows)
    with tempfile.TemporaryDirectory() as workdir:
        stops, round_trips = measure(args.departures, long_shard, Path(workdir))
    stop_p50, stop_max = statistics.median(stops), max(stops)
    trip_p50 = statistics.median(round_trips)
    print(
        f"departure to failed result over {len(stops)} shards of {args.rows} files: "
        f"p50 {stop_p50 * 1000:.1f} ms, max {stop_max * 1000:.1f} ms"
    )
    print(f"assignment to done result of a one-file shard: p50 {trip_p50 * 1000:.1f} ms")
    print(
        f"departures={len(stops)} stop_p50_s={stop_p50:.3f} stop_max_s={stop_max:.3f} "
        f"round_trip_p50_s={trip_p50:.3f} ratio={stop_p50 / trip_p50:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
