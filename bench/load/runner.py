"""The measured process: starts the service, spawns the telemetry and API processes, ticks
and samples the service through the run, and returns what it measured."""

from __future__ import annotations

import argparse
import math
import multiprocessing
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import grpc

from bench._openloop import Scopes, bearer
from bench.load.api_driver import drive_api
from bench.load.calls import CallLog
from bench.load.feeder import FeedStats, feed_telemetry
from bench.load.probes import LagProbe, Sample, Ticker, TickRecord
from bench.load.schedule import ORIGIN, SETTINGS, SLOT, Schedule
from bench.load.verdict import Outcome, minute_line, print_plan
from idlefleet.api.auth import Role, TokenTable
from idlefleet.api.runner import ApiConfig, serving_api
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.service.planner import PlannerService
from idlefleet.sim.clock import ScaledClock
from idlefleet.sim.fleet import SimulatedCar
from idlefleet.sites import SiteConfig
from streams.clients import KafkaSettings
from streams.producer import Publisher

READY_TIMEOUT_S = 300.0
#: Requests before the baseline, not counted (connections, first calls) [s].
WARM_UP_S = 3.0
SAMPLE_S = 5.0


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
    metadata = bearer(token)
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
    service = PlannerService(kafka, SETTINGS, sites, trust=None).start()
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
    publisher = Publisher(kafka)
    with serving_api(config, service, kafka, clock, publisher=publisher) as port:
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
    publisher.close()
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
