"""Ingestion and the gRPC API under a steady load: 10,000 cars reporting and 100 requests/s.

`idlefleet bench load [--cars N] [--telemetry-interval S] [--rps R] [--minutes M] [--sites K]
[--idle-seconds I] [--time-scale X] [--calls-csv PATH]` starts the embedded broker, the
planner service (`idlefleet.service.planner.PlannerService`) reading the streams, and the production
gRPC server over it (`serving_api`: token auth, broker and solver health probes), for K depots
in DE, GB and FR sized for N cars, with the day-ahead intensity and clear-sky PV forecasts
published and one job of a shard per car. Two more processes load it:

- telemetry: N cars drawn from the real Caltech sessions (`idlefleet.sim.fleet`), 90 % parked
  when it starts, the others arriving at their session's time; cars leave when their session
  ends. Every car reports every S seconds, spread evenly over the interval. Batteries follow
  the charge power of the assignments the service publishes (the process reads them, as a
  fleet's gateway would), so the energies move as planned.
- API: R requests per second, open loop (not waiting for answers): GetFleetStatus, GetPlan
  (a site, a car), GetFlexibility (a site, a region) and ListJobs in turn, and a SubmitJob
  every 30 s; each call's latency and status code are recorded.

The service's time runs X times faster than the wall clock (default 15: one 15-minute slot
per minute, so it re-plans and dispatches every minute, through its normal MILP path);
telemetry and requests are paced by the wall clock (X = 1: real time, so a run shorter than
a slot plans only once, before the load). First I seconds of requests with no
telemetry and no planning: the in-run baseline. Then M minutes of both. Every 5 s: the lag of
the service's telemetry reader (end offsets minus the group's committed offsets, which it
commits after processing [records]), the process's RSS, and the records processed.

A line per minute, then a summary; the last line reads `cars=… rps=… minutes=…
lag_max_msgs=… lag_end_msgs=… rss_growth_frac=… api_p99_ms=… p99_ratio_vs_idle=…
ingest_ratio_vs_offered=…`. Exit 1 unless the lag at the end is within 5 s of traffic, RSS
grows less than 10 % from minute 1 to the end, and no call failed other than GetPlan of a car
the plan does not hold (NOT_FOUND: away or just arrived). `--calls-csv` writes every call.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import queue
import secrets
import threading
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import TopicPartition

from bench._openloop import Call, Request, Scopes, plan_requests, send_open_loop
from forecasting.timegrid import SlotGrid
from idlefleet.api.auth import Role, TokenTable
from idlefleet.api.runner import ApiConfig, serving_api
from idlefleet.forecast_messages import forecast_messages
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.service.planner import PlannerService, TickReport
from idlefleet.settings import PlannerSettings
from idlefleet.sim.catalog import demo_sites
from idlefleet.sim.clock import ScaledClock
from idlefleet.sim.fleet import SimulatedCar, generate_fleet
from idlefleet.sites import SiteConfig
from streams.broker import EmbeddedBroker
from streams.clients import KafkaSettings, ensure_topics
from streams.consumer import StreamReader
from streams.messages import Assignment, Job, Message, ModelRef, Telemetry
from streams.producer import Publisher
from streams.topics import Stream

#: The service's time at the first plan: a June morning (08:00 in Berlin and Paris).
ORIGIN = datetime(2020, 6, 10, 6, 0, tzinfo=UTC)
REGIONS = ("DE", "GB", "FR")
SETTINGS = PlannerSettings(slot_minutes=15, horizon_hours=24)
SLOT = timedelta(minutes=SETTINGS.slot_minutes)
PARKED_AT_START_FRAC = 0.9
#: Every car reports once this long before the first plan [service time].
PRIME_LEAD = timedelta(minutes=1)
SAMPLE_S = 5.0
#: The lag at the end is bounded when the service is at most this far behind [s of traffic].
LAG_BOUND_S = 5.0
RSS_GROWTH_LIMIT_FRAC = 0.10
SUBMIT_EVERY_S = 30.0
SUBMITTED_SHARDS = 20
#: Failures the load provokes on purpose: a car away or just arrived is not in the plan.
EXPECTED_FAILURES = frozenset({("GetPlan(vehicle)", "NOT_FOUND")})
READY_TIMEOUT_S = 300.0
#: Requests before the baseline, not counted (connections, first calls) [s].
WARM_UP_S = 3.0
MODEL = ModelRef(uri="file:///srv/models/embed.onnx", sha256="0" * 64)


# -- time ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Schedule:
    """The run's phases in wall time [s since the epoch]: requests from `warm_wall_s`, not
    counted until `idle_wall_s`, then alone until `load_wall_s`, then with telemetry until
    `end_wall_s`."""

    clock: ScaledClock
    warm_wall_s: float
    idle_wall_s: float
    load_wall_s: float
    end_wall_s: float


# -- fleet and inputs ------------------------------------------------------------------------
def load_sites(count: int, cars: int) -> list[SiteConfig]:
    """`count` depots shared out over DE, GB and FR (`demo_sites`), each sized for its cars."""
    sites: list[SiteConfig] = []
    for index, region in enumerate(REGIONS):
        share = count // len(REGIONS) + (index < count % len(REGIONS))
        if share:
            sites += demo_sites(share, -(-cars * share // count), region=region)
    return sites


def build_fleet(cars: int, sites: list[SiteConfig], seed: int) -> list[SimulatedCar]:
    """Cars from the real Caltech sessions: most parked since the slot before ORIGIN for
    their session's stay, the others arriving at their session's time of day."""
    rng = np.random.default_rng(seed)
    fleet = generate_fleet(cars, sites, ORIGIN, SETTINGS.horizon_hours, SETTINGS.slot_minutes, rng)
    parked = rng.random(cars) < PARKED_AT_START_FRAC
    return [
        dataclasses.replace(
            car, arrival=ORIGIN - SLOT, departure=ORIGIN - SLOT + (car.departure - car.arrival)
        )
        if at_start
        else car
        for car, at_start in zip(fleet, parked, strict=True)
    ]


def publish_inputs(kafka: KafkaSettings, sites: list[SiteConfig], cars: int, sim_h: float) -> None:
    """Forecasts covering the run and a planning horizon after it, and a job of a shard per car."""
    slots = math.ceil((sim_h + SETTINGS.horizon_hours) * 60 / SETTINGS.slot_minutes)
    grid = SlotGrid(ORIGIN, SETTINGS.slot_minutes, slots)
    job = Job(
        job_id="load-base",
        submitted_at=ORIGIN,
        model=MODEL,
        input_uris=[f"file:///srv/in/base/{i}.npy" for i in range(cars)],
        output_uri="file:///srv/out/base",
        value_per_shard=0.5,
        release=ORIGIN,
        deadline=ORIGIN + timedelta(hours=12),
    )
    messages: list[tuple[Stream, Message]] = [
        *forecast_messages(sites, grid, ORIGIN, None),
        (Stream.JOBS, job),
    ]
    publisher = Publisher(kafka)
    try:
        for stream, message in messages:
            publisher.publish(stream, message)
        publisher.flush()
    finally:
        publisher.close()


# -- the telemetry process -------------------------------------------------------------------
class Gateway:
    """The cars' side: batteries follow the charge power [kW] of their assignments and move
    slot by slot; reports carry the energy reached within the slot."""

    def __init__(self, fleet: Sequence[SimulatedCar]) -> None:
        self.cars = {car.vehicle_id: car for car in fleet}
        self.refused = 0  # set points for a car not parked the whole slot
        self._slot_start = ORIGIN - SLOT

    def on_assignment(self, stream: Stream, message: Message) -> None:
        assert isinstance(message, Assignment)
        car = self.cars.get(message.vehicle_id)
        if car is None:
            return
        try:
            car.set_charge_power_kw(message.slot_start, message.slot_end, message.charge_power_kw)
        except ValueError:
            self.refused += 1
            return
        if message.work:
            car.compute_slots.add(message.slot_start)

    def report(self, car: SimulatedCar, now: datetime) -> Telemetry:
        """What `car` reports at `now`, parked or away."""
        self._move_to(now)
        if car.is_parked(self._slot_start, self._slot_start + SLOT):
            return car.report(now, car.energy_at(self._slot_start, now))
        return car.report(now)

    def _move_to(self, now: datetime) -> None:
        """Move every battery through the slots that ended by `now`."""
        while now >= self._slot_start + SLOT:
            end = self._slot_start + SLOT
            for car in self.cars.values():
                car.advance(self._slot_start, end)
            self._slot_start = end


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


# -- the API process -------------------------------------------------------------------------
def api_requests(
    stub: pb_grpc.FleetPlannerStub, scopes: Scopes, metadata: Any, rng: np.random.Generator
) -> list[Request]:
    """The steady mix: the fleet's status, the plan of a site and of a car, the flexibility of
    a site and of a region, the job list."""
    by_label = {request.label: request for request in plan_requests(stub, scopes, metadata, rng)}
    return [
        Request(
            "GetFleetStatus",
            lambda: stub.GetFleetStatus.future(pb.GetFleetStatusRequest(), metadata=metadata),
        ),
        by_label["GetPlan(site)"],
        by_label["GetFlexibility(site)"],
        by_label["GetPlan(vehicle)"],
        by_label["GetFlexibility(region)"],
        Request("ListJobs", lambda: stub.ListJobs.future(pb.ListJobsRequest(), metadata=metadata)),
    ]


def job_submitter(
    stub: pb_grpc.FleetPlannerStub,
    scopes: Scopes,
    metadata: Any,
    clock: ScaledClock,
    rng: np.random.Generator,
) -> Request:
    """SubmitJob of a new job each time: a few shards at one site, due in 4 hours."""
    numbers = iter(range(1, 1_000_000))

    def send() -> Any:
        job_id = f"load-{next(numbers):04d}"
        now = clock()
        spec = pb.JobSpec(
            job_id=job_id,
            model=pb.ModelRef(uri=MODEL.uri, sha256=MODEL.sha256),
            input_uris=[f"file:///srv/in/{job_id}/{i}.npy" for i in range(SUBMITTED_SHARDS)],
            output_uri=f"file:///srv/out/{job_id}",
            value_per_shard=0.5,
            site_ids=[scopes.sites[int(rng.integers(len(scopes.sites)))]],
        )
        spec.release.FromDatetime(now)
        spec.deadline.FromDatetime(now + timedelta(hours=4))
        return stub.SubmitJob.future(pb.SubmitJobRequest(job=spec), metadata=metadata)

    return Request("SubmitJob", send)


def drive_api(
    target: str, token: str, scopes: Scopes, rps: float, schedule: Schedule, conn: Connection
) -> None:
    """The API process: `rps` requests per second open-loop from the warm-up to the end;
    finished calls go to `conn` in batches about every second, then None."""
    metadata = (("authorization", f"Bearer {token}"),)
    finished: queue.SimpleQueue[Call] = queue.SimpleQueue()
    stop = threading.Event()
    forwarder = threading.Thread(target=_forward_calls, args=(finished, conn, stop), daemon=True)
    forwarder.start()
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.FleetPlannerStub(channel)
        rng = np.random.default_rng(1)
        mix = api_requests(stub, scopes, metadata, rng)
        submit = job_submitter(stub, scopes, metadata, schedule.clock, rng)
        submit_every = max(1, round(SUBMIT_EVERY_S * rps))

        def pick(index: int) -> Request:
            return submit if index % submit_every == submit_every - 1 else mix[index % len(mix)]

        seconds = schedule.end_wall_s - schedule.warm_wall_s
        send_open_loop(pick, rps, seconds, finished.put, start_wall_s=schedule.warm_wall_s)
    stop.set()
    forwarder.join()
    conn.send(None)


def _forward_calls(
    finished: queue.SimpleQueue[Call], conn: Connection, stop: threading.Event
) -> None:
    """Send what has finished about every second until `stop`, then the rest."""
    while True:
        stopping = stop.wait(1.0)
        batch = []
        while not finished.empty():
            batch.append(finished.get())
        if batch:
            conn.send(batch)
        if stopping:
            return


# -- the measured process --------------------------------------------------------------------
class CallLog:
    """Finished calls, kept compactly (the log lives in the process whose RSS is measured)."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.codes: list[str] = []
        self._label_ids = array("H")
        self._code_ids = array("H")
        self._sent_wall_s = array("d")
        self._latency_s = array("d")
        self._lock = threading.Lock()
        self.done = threading.Event()

    def add(self, calls: list[Call]) -> None:
        with self._lock:
            for call in calls:
                self._label_ids.append(_index(self.labels, call.label))
                self._code_ids.append(_index(self.codes, call.code))
                self._sent_wall_s.append(call.sent_wall_s)
                self._latency_s.append(call.latency_s)

    def collect(self, conn: Connection) -> None:
        """Add the batches `conn` brings until its None (run on a thread of its own)."""
        while (batch := conn.recv()) is not None:
            self.add(batch)
        self.done.set()

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Copies: sent [s since the epoch], label ids, code ids, latencies [ms]."""
        with self._lock:
            return (
                np.frombuffer(self._sent_wall_s, dtype=np.float64).copy(),
                np.frombuffer(self._label_ids, dtype=np.uint16).copy(),
                np.frombuffer(self._code_ids, dtype=np.uint16).copy(),
                np.frombuffer(self._latency_s, dtype=np.float64) * 1000,
            )

    def window(self, start_s: float, end_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Label ids, code ids and latencies [ms] of the calls sent in [start_s, end_s)."""
        sent, labels, codes, latency_ms = self._arrays()
        inside = (sent >= start_s) & (sent < end_s)
        return labels[inside], codes[inside], latency_ms[inside]

    def split_ms(
        self, start_s: float, end_s: float, spans: Sequence[tuple[float, float]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Latencies [ms] of the calls sent in [start_s, end_s): those sent within one of
        `spans` ([start, end) wall times), and the others."""
        sent, _, _, latency_ms = self._arrays()
        chosen = (sent >= start_s) & (sent < end_s)
        within = np.zeros_like(chosen)
        for span_start_s, span_end_s in spans:
            within |= (sent >= span_start_s) & (sent < span_end_s)
        return latency_ms[chosen & within], latency_ms[chosen & ~within]

    def write_csv(self, path: Path, origin_wall_s: float) -> None:
        """Every call as `label,sent_s,latency_ms,code`, sent_s from `origin_wall_s` [s]."""
        with self._lock, path.open("w") as out:
            out.write("label,sent_s,latency_ms,code\n")
            for label, code, sent_s, latency_s in zip(
                self._label_ids, self._code_ids, self._sent_wall_s, self._latency_s, strict=True
            ):
                out.write(
                    f"{self.labels[label]},{sent_s - origin_wall_s:.3f},{latency_s * 1000:.2f},"
                    f"{self.codes[code]}\n"
                )

    def failures(self, start_s: float, end_s: float) -> Counter[tuple[str, str]]:
        """(label, code) of every call sent in [start_s, end_s) that did not succeed."""
        labels, codes, _ = self.window(start_s, end_s)
        return Counter(
            (self.labels[label], self.codes[code])
            for label, code in zip(labels.tolist(), codes.tolist(), strict=True)
            if self.codes[code] != "OK"
        )


def _index(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)


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


# -- running it ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Outcome:
    """Everything the run measured."""

    args: argparse.Namespace
    schedule: Schedule
    first_tick: TickRecord
    samples: list[Sample]
    calls: CallLog
    ticks: list[TickRecord]
    ticks_skipped: int
    tick_failure: BaseException | None
    feed: FeedStats


@contextmanager
def child(
    spawn: Any, target: Callable[..., None], *args: Any
) -> Iterator[tuple[BaseProcess, Connection]]:
    """A spawned process running `target(*args, conn)`, and our end of `conn`; ended by its
    handle if it is still running when the block ends."""
    ours, theirs = spawn.Pipe()
    process = spawn.Process(target=target, args=(*args, theirs), daemon=True)
    process.start()
    try:
        yield process, ours
    finally:
        process.join(30)
        if process.is_alive():
            process.terminate()
            process.join()


def receive(conn: Connection, timeout_s: float, what: str) -> Any:
    if not conn.poll(timeout_s):
        raise RuntimeError(f"no {what} after {timeout_s:.0f} s")
    return conn.recv()


def first_plan(service: PlannerService) -> TickRecord:
    """The service reads what the cars reported and plans ORIGIN, the run's first slot, then
    reads back the assignments it published (so that the baseline starts quiet)."""
    if not service.catch_up(READY_TIMEOUT_S):
        raise RuntimeError("the service did not read the primed telemetry")
    started_s = time.time()
    report = service.tick(ORIGIN)
    took_s = time.time() - started_s
    if not service.catch_up(READY_TIMEOUT_S):
        raise RuntimeError("the service did not read its first assignments")
    return TickRecord(ORIGIN, started_s, took_s, report)


def wait_until_served(target: str, token: str) -> None:
    """Until GetPlan answers: the API publishes a plan's views shortly after it is made."""
    metadata = (("authorization", f"Bearer {token}"),)
    deadline_s = time.time() + READY_TIMEOUT_S
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.FleetPlannerStub(channel)
        while True:
            try:
                stub.GetPlan(pb.GetPlanRequest(), metadata=metadata, timeout=30)
                return
            except grpc.RpcError as exc:
                if time.time() > deadline_s:
                    raise RuntimeError(f"the API did not serve a plan: {exc}") from exc
                time.sleep(0.5)


def run(
    args: argparse.Namespace,
    kafka: KafkaSettings,
    sites: list[SiteConfig],
    fleet: list[SimulatedCar],
) -> Outcome:
    """Prime the service with every car's report, plan the first slot, then serve and load."""
    spawn = multiprocessing.get_context("spawn")
    service = PlannerService(kafka, SETTINGS, sites).start()
    probe = LagProbe(kafka, SETTINGS.group_id)
    try:
        with child(spawn, feed_telemetry, kafka, fleet, args.telemetry_interval) as (_, cars):
            receive(cars, READY_TIMEOUT_S, "primed telemetry")
            clock = ScaledClock(ORIGIN, time.time(), args.time_scale)
            first = first_plan(service)
            print_plan("first plan", first)
            scopes = Scopes(
                regions=sorted({site.region for site in sites}),
                sites=[site.site_id for site in sites],
                vehicles=[car.vehicle_id for car in fleet],
            )
            return serve_and_load(args, spawn, service, kafka, probe, clock, scopes, cars, first)
    finally:
        probe.close()
        service.stop()


def serve_and_load(
    args: argparse.Namespace,
    spawn: Any,
    service: PlannerService,
    kafka: KafkaSettings,
    probe: LagProbe,
    clock: ScaledClock,
    scopes: Scopes,
    cars: Connection,
    first: TickRecord,
) -> Outcome:
    """Serve the API over the service; requests alone, then with telemetry and ticks."""
    token = secrets.token_urlsafe(24)
    config = ApiConfig("127.0.0.1", 0, TokenTable([(token, Role.OPERATOR)]), None)
    calls = CallLog()
    with serving_api(config, service, kafka, clock) as port:
        target = f"127.0.0.1:{port}"
        wait_until_served(target, token)
        warm_s = time.time() + 1.0
        idle_s = warm_s + WARM_UP_S
        load_s = idle_s + args.idle_seconds
        schedule = Schedule(clock, warm_s, idle_s, load_s, load_s + args.minutes * 60)
        with child(spawn, drive_api, target, token, scopes, args.rps, schedule) as (_, api):
            threading.Thread(target=calls.collect, args=(api,), daemon=True).start()
            cars.send(schedule)
            ticker = Ticker(service, clock, clock.next_boundary(load_s, SLOT)).start()
            try:
                samples = watch(schedule, probe, calls, ticker, args)
                stats: FeedStats = receive(cars, 120, "telemetry stats")
                calls.done.wait(120)
            finally:
                ticker.stop()
    return Outcome(
        args, schedule, first, samples, calls, ticker.records, ticker.skipped, ticker.failure, stats
    )


def watch(
    schedule: Schedule, probe: LagProbe, calls: CallLog, ticker: Ticker, args: argparse.Namespace
) -> list[Sample]:
    """Sample every SAMPLE_S seconds from the idle phase to the end; a line per load minute."""
    samples: list[Sample] = []
    first = -math.floor((schedule.load_wall_s - schedule.idle_wall_s) / SAMPLE_S)
    last = round(args.minutes * 60 / SAMPLE_S)
    per_minute = round(60 / SAMPLE_S)
    for step in range(first, last + 1):
        time.sleep(max(0.0, schedule.load_wall_s + step * SAMPLE_S - time.time()))
        samples.append(probe.sample())
        if step > 0 and step % per_minute == 0:
            line = minute_line(step // per_minute, schedule, samples, calls, ticker, args)
            print(line, flush=True)
    return samples


# -- reporting -------------------------------------------------------------------------------
def print_plan(name: str, tick: TickRecord) -> None:
    plan = tick.report.replanned
    planned = "no re-plan" if plan is None else plan_text(tick)
    print(
        f"{name} at {tick.boundary:%Y-%m-%d %H:%M}Z: {planned}; {tick.report.assignments} "
        f"assignments, {tick.report.work_items} work items; tick took {tick.took_s:.1f} s",
        flush=True,
    )


def plan_text(tick: TickRecord) -> str:
    plan = tick.report.replanned
    assert plan is not None
    return (
        f"{plan.strategy} {plan.status} for {plan.vehicles} cars in {plan.solve_s:.1f} s "
        f"({','.join(plan.reasons)})"
    )


def percentiles_ms(latency_ms: np.ndarray) -> tuple[float, float]:
    """p50 and p99 [ms]; NaN without calls."""
    if not len(latency_ms):
        return math.nan, math.nan
    p50, p99 = np.percentile(latency_ms, [50, 99])
    return float(p50), float(p99)


def minute_line(
    minute: int,
    schedule: Schedule,
    samples: list[Sample],
    calls: CallLog,
    ticker: Ticker,
    args: argparse.Namespace,
) -> str:
    """Lag, RSS, telemetry processed, API latency and ticks of one minute of load."""
    start_s = schedule.load_wall_s + (minute - 1) * 60
    end_s = start_s + 60
    inside = [s for s in samples if start_s - 1 <= s.wall_s <= end_s + 1]
    rate = (inside[-1].consumed - inside[0].consumed) / (inside[-1].wall_s - inside[0].wall_s)
    latency_ms = calls.window(start_s, end_s)[2]
    p50, p99 = percentiles_ms(latency_ms)
    failures = calls.failures(start_s, end_s)
    unexpected = sum(n for key, n in failures.items() if key not in EXPECTED_FAILURES)
    ticks = [
        f"tick at +{t.started_wall_s - start_s:.0f} s took {t.took_s:.1f} s"
        + ("" if t.report.replanned is None else f": {plan_text(t)}")
        for t in ticker.records
        if start_s <= t.started_wall_s < end_s
    ]
    return (
        f"minute {minute:2d}/{args.minutes}: lag max {max(s.lag_msgs for s in inside):5d} msgs, "
        f"RSS {inside[-1].rss_bytes / 2**20:6.0f} MB, telemetry in {rate:5.0f} msgs/s, "
        f"API n={len(latency_ms)} p50 {p50:.1f} ms p99 {p99:.1f} ms failed "
        f"{sum(failures.values())} ({unexpected} unexpected); {'; '.join(ticks) or 'no tick'}"
    )


def latency_table(outcome: Outcome) -> list[str]:
    """Lines of p50/p99 [ms] by call, with no telemetry (idle) and under load."""
    s, calls = outcome.schedule, outcome.calls
    idle = calls.window(s.idle_wall_s, s.load_wall_s)
    load = calls.window(s.load_wall_s, s.end_wall_s)
    lines = [
        f"  {'call':24s} {'idle n':>7s} {'p50':>7s} {'p99':>7s}   {'load n':>7s} "
        f"{'p50':>7s} {'p99':>7s}   p99 ratio"
    ]
    for index, label in [*enumerate(calls.labels), (-1, "all")]:
        idle_ms, load_ms = (
            latency_ms if index < 0 else latency_ms[labels == index]
            for labels, _, latency_ms in (idle, load)
        )
        p50_idle, p99_idle = percentiles_ms(idle_ms)
        p50_load, p99_load = percentiles_ms(load_ms)
        lines.append(
            f"  {label:24s} {len(idle_ms):7d} {p50_idle:7.1f} {p99_idle:7.1f}   {len(load_ms):7d} "
            f"{p50_load:7.1f} {p99_load:7.1f}   {p99_load / p99_idle:.2f}"
        )
    return lines


def overall_p99_ms(calls: CallLog, start_s: float, end_s: float) -> float:
    """p99 latency [ms] of every call sent in [start_s, end_s)."""
    return percentiles_ms(calls.window(start_s, end_s)[2])[1]


def tick_split_line(outcome: Outcome, p99_idle_ms: float) -> str:
    """API latency under load while a tick ran and while none did."""
    s = outcome.schedule
    spans = [(t.started_wall_s, t.started_wall_s + t.took_s) for t in outcome.ticks]
    during_ms, between_ms = outcome.calls.split_ms(s.load_wall_s, s.end_wall_s, spans)
    share = len(during_ms) / max(1, len(during_ms) + len(between_ms))
    p50_during, p99_during = percentiles_ms(during_ms)
    p50_between, p99_between = percentiles_ms(between_ms)
    return (
        f"  sent while a tick ran ({share:.0%} of calls): p50 {p50_during:.1f} p99 "
        f"{p99_during:.1f}; otherwise p50 {p50_between:.1f} p99 {p99_between:.1f} "
        f"({p99_between / p99_idle_ms:.2f} x idle)"
    )


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The run's figures against its targets: rates [records/s], lag [records], RSS [MB],
    latency [ms]."""

    offered: float
    sent: float
    ingested: float
    lag_max: int
    lag_end: int
    lag_bound: float
    rss_minute_1_mb: float
    rss_end_mb: float
    rss_last_half_mb: tuple[float, float]
    failures: Counter[tuple[str, str]]
    p99_load_ms: float
    p99_idle_ms: float
    tick_failed: bool

    @property
    def rss_growth_frac(self) -> float:
        return (self.rss_end_mb - self.rss_minute_1_mb) / self.rss_minute_1_mb

    @property
    def unexpected_failures(self) -> int:
        return sum(n for key, n in self.failures.items() if key not in EXPECTED_FAILURES)

    @property
    def ok(self) -> bool:
        return (
            self.lag_end <= self.lag_bound
            and self.rss_growth_frac < RSS_GROWTH_LIMIT_FRAC
            and not self.unexpected_failures
            and not self.tick_failed
        )


def judge(outcome: Outcome) -> Verdict:
    """The figures of the load phase (RSS from the end of its first minute)."""
    args, s = outcome.args, outcome.schedule
    load = [x for x in outcome.samples if x.wall_s >= s.load_wall_s - 1]
    offered = args.cars / args.telemetry_interval
    minute_1 = next(x for x in load if x.wall_s >= s.load_wall_s + min(60, args.minutes * 60) - 1)
    last_half_mb = [
        x.rss_bytes / 2**20 for x in load if x.wall_s >= s.end_wall_s - args.minutes * 30
    ]
    return Verdict(
        offered=offered,
        sent=outcome.feed.sent / outcome.feed.seconds,
        ingested=(load[-1].consumed - load[0].consumed) / (load[-1].wall_s - load[0].wall_s),
        lag_max=max(x.lag_msgs for x in load),
        lag_end=load[-1].lag_msgs,
        lag_bound=LAG_BOUND_S * offered,
        rss_minute_1_mb=minute_1.rss_bytes / 2**20,
        rss_end_mb=load[-1].rss_bytes / 2**20,
        rss_last_half_mb=(min(last_half_mb), max(last_half_mb)),
        failures=outcome.calls.failures(s.idle_wall_s, s.end_wall_s),
        p99_load_ms=overall_p99_ms(outcome.calls, s.load_wall_s, s.end_wall_s),
        p99_idle_ms=overall_p99_ms(outcome.calls, s.idle_wall_s, s.load_wall_s),
        tick_failed=outcome.tick_failure is not None,
    )


def summarise(outcome: Outcome) -> int:
    """Print the summary and the machine-readable last line; 0 when every target holds."""
    args, v = outcome.args, judge(outcome)
    print(
        f"\nsummary: {args.minutes} min of load after {args.idle_seconds:.0f} s of requests alone"
    )
    print(
        f"telemetry: offered {v.offered:.1f} reports/s, sent {v.sent:.1f}/s (at worst "
        f"{outcome.feed.behind_max_s:.2f} s behind schedule), processed {v.ingested:.1f} "
        f"records/s: {v.ingested / v.offered:.3f} of offered; {outcome.feed.refused} set points "
        f"refused (car not parked all slot)"
    )
    print(
        f"lag: max {v.lag_max} msgs ({v.lag_max / v.offered:.1f} s of traffic), at the end "
        f"{v.lag_end} ({v.lag_end / v.offered:.1f} s); bound {v.lag_bound:.0f} "
        f"({LAG_BOUND_S:.0f} s): {'bounded' if v.lag_end <= v.lag_bound else 'NOT bounded'}"
    )
    low_mb, high_mb = v.rss_last_half_mb
    print(
        f"memory: RSS {v.rss_minute_1_mb:.0f} MB at minute 1, {v.rss_end_mb:.0f} MB at the end: "
        f"{v.rss_growth_frac:+.2%} (limit {RSS_GROWTH_LIMIT_FRAC:.0%}): "
        f"{'flat' if v.rss_growth_frac < RSS_GROWTH_LIMIT_FRAC else 'GROWING'}; "
        f"{low_mb:.0f}-{high_mb:.0f} MB over the last half"
    )
    print_ticks(outcome)
    print(f"API at {args.rps:.0f} requests/s open loop, latency [ms]:")
    print("\n".join(latency_table(outcome)))
    print(tick_split_line(outcome, v.p99_idle_ms))
    for (label, code), n in sorted(v.failures.items()):
        expected = "expected" if (label, code) in EXPECTED_FAILURES else "UNEXPECTED"
        print(f"  failed: {label} {code} x{n} ({expected})")
    print(
        f"cars={args.cars} rps={args.rps:.0f} minutes={args.minutes} lag_max_msgs={v.lag_max} "
        f"lag_end_msgs={v.lag_end} rss_growth_frac={v.rss_growth_frac:.3f} "
        f"api_p99_ms={v.p99_load_ms:.1f} p99_ratio_vs_idle={v.p99_load_ms / v.p99_idle_ms:.2f} "
        f"ingest_ratio_vs_offered={v.ingested / v.offered:.3f}"
    )
    return 0 if v.ok else 1


def print_ticks(outcome: Outcome) -> None:
    """How planning went under load: ticks, re-plans and their solve times."""
    ticks = outcome.ticks
    plans = [t.report.replanned for t in ticks if t.report.replanned is not None]
    solve = sorted(p.solve_s for p in plans)
    kinds = Counter(f"{p.strategy} {p.status}" for p in plans)
    took = sorted(t.took_s for t in ticks)
    print(
        f"ticks: {len(ticks)} under load ({outcome.ticks_skipped} boundaries skipped), "
        f"{len(plans)} re-planned ({', '.join(f'{k} x{n}' for k, n in sorted(kinds.items()))}); "
        f"solve median {np.median(solve) if solve else math.nan:.1f} s, max "
        f"{max(solve, default=math.nan):.1f} s; tick median "
        f"{np.median(took) if took else math.nan:.1f} s, max {max(took, default=math.nan):.1f} s"
    )
    print(
        f"  dispatched {sum(t.report.assignments for t in ticks)} assignments with "
        f"{sum(t.report.work_items for t in ticks)} work items; cars the plan missed, charged "
        f"owner-first: {sum(len(t.report.fallback_vehicles) for t in ticks)}"
    )
    if outcome.tick_failure is not None:
        print(f"  tick FAILED: {outcome.tick_failure!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench load", description=__doc__)
    parser.add_argument("--cars", type=int, default=10_000)
    parser.add_argument("--telemetry-interval", type=float, default=30.0, help="per car [s]")
    parser.add_argument("--rps", type=float, default=100.0, help="API requests per second")
    parser.add_argument("--minutes", type=int, default=10, help="of load, after the baseline")
    parser.add_argument("--sites", type=int, default=102)
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="API alone [s]")
    parser.add_argument("--time-scale", type=float, default=15.0, help="service time per wall time")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--calls-csv", type=Path, help="write every call (s from the start of the load) here"
    )
    args = parser.parse_args(argv)

    sites = load_sites(args.sites, args.cars)
    fleet = build_fleet(args.cars, sites, args.seed)
    run_h = args.time_scale * (args.minutes + 10) / 60
    with EmbeddedBroker() as broker:
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"load{uuid.uuid4().hex[:8]}"
        )
        ensure_topics(kafka)
        publish_inputs(kafka, sites, args.cars, run_h)
        print(
            f"{args.cars} cars at {len(sites)} sites, {args.cars / args.telemetry_interval:.0f} "
            f"reports/s, {args.rps:.0f} requests/s; service time x{args.time_scale:g}",
            flush=True,
        )
        outcome = run(args, kafka, sites, fleet)
    if args.calls_csv is not None:
        outcome.calls.write_csv(args.calls_csv, outcome.schedule.load_wall_s)
    return summarise(outcome)


if __name__ == "__main__":
    raise SystemExit(main())
