"""`idlefleet chaos`: a demo-sized day, run while the service, agents and broker misbehave.

Each run: the embedded broker; the planner service and the cars' agents as processes
(`idlefleet.chaos.workers`); the physical world here (the cars' batteries, from the demo's
simulator, and their telemetry). The simulated clock moves slot by slot. At random moments
the service or the agents get SIGKILL (before, during or after a tick) and are started
again; once per run the broker is frozen (SIGSTOP for up to `max_freeze_s`, then SIGCONT:
an outage that keeps the log) while the service's gRPC health is watched.

A car whose agent is down at a slot does what a charger without instructions does: it
charges at full power until its target. At the end a fresh view of the service is checked:

- lost: done results an agent reported (for work an assignment carried) that the service
  does not count, although their shard still lacks executions;
- duplicates: shards with more accepted executions than they need;
- owner violations: a car that left with less than it was owed, or went below its floor.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from forecasting.timegrid import SlotGrid
from idlefleet.chaos.checks import lost_and_duplicates, owner_shortfalls
from idlefleet.chaos.children import Child
from idlefleet.credentials import enroll
from idlefleet.forecast_messages import forecast_messages
from idlefleet.sim.catalog import demo_jobs, demo_sites
from idlefleet.sim.fleet import SimulatedCar, generate_fleet
from streams.broker import EmbeddedBroker
from streams.clients import KafkaSettings, ensure_topics
from streams.consumer import StreamReader
from streams.identity import Authority, Identity, Role
from streams.messages import Message
from streams.topics import Stream
from streams.trust import Trust

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class ChaosConfig:
    runs: int = 3
    cars: int = 12
    sites: int = 2
    hours: float = 12.0
    slot_minutes: int = 15
    seed: int = 11
    date: str = "2020-06-10"
    service_kills: int = 2
    agent_kills: int = 2
    max_freeze_s: float = 30.0
    work_dir: Path | None = None


@dataclass
class ChaosOutcome:
    run: int
    executions_total: int = 0
    executions_done: int = 0
    lost: int = 0
    duplicates: int = 0
    owner_violations: list[str] = field(default_factory=list)
    service_kills: int = 0
    agent_kills: int = 0
    freeze_s: float = 0.0
    health_went_down: bool = False
    health_came_back: bool = False

    def line(self) -> str:
        return (
            f"run {self.run}: executions {self.executions_done}/{self.executions_total} done "
            f"(rest reported unmet), lost {self.lost}, duplicates {self.duplicates}, owner "
            f"violations {len(self.owner_violations)}; killed service x{self.service_kills}, "
            f"agents x{self.agent_kills}; broker frozen {self.freeze_s:.0f} s, health "
            f"{'NOT_SERVING' if self.health_went_down else 'never down'} then "
            f"{'SERVING' if self.health_came_back else 'not back'}"
        )


class ChaosRun:
    """One run: world, broker, service and agents; `play()` returns its outcome."""

    def __init__(self, config: ChaosConfig, run: int, directory: Path) -> None:
        self.config = config
        self.run = run
        self.directory = directory
        self.rng = np.random.default_rng(config.seed + run)
        self.start = datetime.fromisoformat(config.date).replace(tzinfo=UTC)
        slots = round(config.hours * 60 / config.slot_minutes)
        self.grid = SlotGrid(self.start, config.slot_minutes, slots)
        self.sites = demo_sites(config.sites, config.cars)
        self.fleet = generate_fleet(
            config.cars, self.sites, self.start, config.hours, config.slot_minutes, self.rng
        )
        self.jobs = demo_jobs(
            config.cars, self.start, self.grid.end, directory, "mlp", config.seed + run
        )
        # Identity files as each process would hold them; one authority enrolls them all.
        self.identity_dir = directory / "identities"
        self.authority = Authority.generate()
        holders: list[tuple[str, Role]] = [("planner", "service"), ("chaos-feeds", "adapter")]
        holders += [(car.vehicle_id, "car") for car in self.fleet]
        self.identities = [
            Identity.load_or_create(self.identity_dir / f"{name}.key", name, role)
            for name, role in holders
        ]
        self.trusted = {
            "identity_dir": str(self.identity_dir),
            "authority_public_key": self.authority.public_key.hex(),
        }
        self.env = dict(os.environ)
        self.api_token = secrets.token_hex(16)
        self.outcome = ChaosOutcome(run)
        self.floor_breaches: list[str] = []

    # -- processes ----------------------------------------------------------------------
    def _service(self, kafka: KafkaSettings) -> Child:
        return Child(
            "service",
            {
                "kafka": {"bootstrap_servers": kafka.bootstrap_servers},
                "slot_minutes": self.config.slot_minutes,
                "horizon_hours": self.config.hours,
                "heartbeat_timeout_s": 3600.0,
                "sites": [site.model_dump() for site in self.sites],
                "api_token": self.api_token,
                **self.trusted,
            },
            self.directory,
            self.env,
        )

    def _agents(self, kafka: KafkaSettings, now: datetime) -> Child:
        return Child(
            "agents",
            {
                "kafka": {"bootstrap_servers": kafka.bootstrap_servers},
                "now": now.isoformat(),
                "compute_kw": self.fleet[0].compute_kw,
                "vehicles": [car.vehicle_id for car in self.fleet],
                **self.trusted,
            },
            self.directory,
            self.env,
        )

    # -- the run ------------------------------------------------------------------------
    def play(self, progress: bool) -> ChaosOutcome:
        slots = self.grid.slots
        service_kills = self._moments(self.config.service_kills, slots)
        agent_kills = self._moments(self.config.agent_kills, slots)
        freeze_slot = int(self.rng.integers(1, slots))
        with EmbeddedBroker() as broker:
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
            ensure_topics(kafka)
            enroll(kafka, self.authority, self.identities)
            # the harness plays the cars (their telemetry) and the feeds (forecasts, jobs)
            world = Trust(kafka, self.authority.public_key, self.identities[1:]).start()
            publisher = world.publisher()
            for stream, message in forecast_messages(self.sites, self.grid, self.start, None):
                publisher.publish(stream, message)
            service = self._service(kafka)
            agents = self._agents(kafka, self.start)
            pending = sorted(self.jobs, key=lambda pair: pair[0])
            try:
                for slot in range(slots):
                    now = self.grid.slot_start(slot)
                    for car in self.fleet:
                        telemetry = car.telemetry(now)
                        if telemetry is not None:
                            publisher.publish(Stream.TELEMETRY, telemetry)
                    while pending and pending[0][0] <= now:
                        publisher.publish(Stream.JOBS, pending.pop(0)[1])
                    publisher.flush()
                    if slot == freeze_slot:
                        self._freeze(broker, service)
                    agents.ask({"time": (now + timedelta(minutes=1)).isoformat()})
                    service = self._tick(kafka, service, now, service_kills.get(slot))
                    agents = self._sync(kafka, agents, now, agent_kills.get(slot))
                    self._advance(agents, now)
                    if progress:
                        print(f"  run {self.run} slot {slot + 1}/{slots}", file=sys.stderr)
                end = self.grid.end
                for car in self.fleet:
                    telemetry = car.telemetry(end)
                    if telemetry is not None:
                        publisher.publish(Stream.TELEMETRY, telemetry)
                publisher.flush()
                self._judge(kafka, service)
            finally:
                publisher.close()
                world.stop()
                for child in (service, agents):
                    child.close()
        return self.outcome

    def _moments(self, count: int, slots: int) -> dict[int, str]:
        """`count` distinct slots, each with the phase of its kill."""
        chosen = self.rng.choice(np.arange(1, slots), size=min(count, slots - 1), replace=False)
        phases = ("before", "during", "after")
        return {int(s): phases[int(self.rng.integers(len(phases)))] for s in chosen}

    def _tick(self, kafka: KafkaSettings, service: Child, now: datetime, kill: str | None) -> Child:
        if kill == "before":
            service = self._restart_service(kafka, service)
        if kill == "during":
            service.send({"tick": now.isoformat()})
            time.sleep(float(self.rng.uniform(0.0, 0.5)))
            service = self._restart_service(kafka, service)
        service.ask({"tick": now.isoformat()})
        if kill == "after":
            service = self._restart_service(kafka, service)
        return service

    def _restart_service(self, kafka: KafkaSettings, service: Child) -> Child:
        service.kill()
        self.outcome.service_kills += 1
        return self._service(kafka)

    def _sync(self, kafka: KafkaSettings, agents: Child, now: datetime, kill: str | None) -> Child:
        if kill is not None:
            if kill == "during":
                time.sleep(float(self.rng.uniform(0.0, 0.3)))
            self._world_take(agents)
            agents.kill()
            self.outcome.agent_kills += 1
            agents = self._agents(kafka, now + timedelta(minutes=1))
        agents.ask({"sync": True})
        return agents

    def _freeze(self, broker: EmbeddedBroker, service: Child) -> None:
        """SIGSTOP the broker, watch health go down, SIGCONT, watch it come back."""
        assert broker.pid is not None
        seconds = float(
            self.rng.uniform(min(10.0, self.config.max_freeze_s), self.config.max_freeze_s)
        )
        port = service.ready["grpc_port"]
        os.kill(broker.pid, signal.SIGSTOP)
        started = time.monotonic()
        try:
            while time.monotonic() - started < seconds:
                if _health(port) == NOT_SERVING:
                    self.outcome.health_went_down = True
                time.sleep(0.5)
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        self.outcome.freeze_s = time.monotonic() - started
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _health(port) == SERVING:
                self.outcome.health_came_back = True
                break
            time.sleep(0.5)

    # -- the world ----------------------------------------------------------------------
    def _world_take(self, agents: Child) -> None:
        """Apply what the agents told the cars so far (their process is about to go)."""
        for event in agents.events:
            car = self._car(event.get("charge") or event["computed"])
            slot = datetime.fromisoformat(event["slot"])
            if "charge" in event:
                car.charge_kw_by_slot[slot] = event["kw"]
            else:
                car.compute_slots.add(slot)
        agents.events.clear()

    def _advance(self, agents: Child, now: datetime) -> None:
        self._world_take(agents)
        end = now + timedelta(minutes=self.grid.slot_minutes)
        for car in self.fleet:
            if car.is_parked(now, end) and now not in car.charge_kw_by_slot:
                # no instruction reached the car: the charger's own default, owners first
                car.charge_kw_by_slot[now] = (
                    car.charger_kw if car.energy_kwh < car.target_kwh else 0.0
                )
            before = car.energy_kwh
            car.advance(now, end)
            floor = min(car.reserve_kwh, before)
            if car.is_parked(now, end) and car.energy_kwh < floor - 1e-6:
                self.floor_breaches.append(
                    f"{car.vehicle_id} fell to {car.energy_kwh:.3f} kWh below its floor "
                    f"{floor:.3f} in slot {now.isoformat()}"
                )

    def _car(self, vehicle_id: str) -> SimulatedCar:
        return next(car for car in self.fleet if car.vehicle_id == vehicle_id)

    # -- the verdict --------------------------------------------------------------------
    def _judge(self, kafka: KafkaSettings, service: Child) -> None:
        status = service.ask({"status": True})
        records = _read_all(kafka, [Stream.ASSIGNMENTS, Stream.RESULTS])
        accepted = {
            (job, shard, vehicle)
            for job, pairs in status["accepted"].items()
            for shard, vehicle in pairs
        }
        jobs = {job.job_id: job for _, job in self.jobs}
        needed = {
            job_id: max(jobs[job_id].replicas, p["total"] // jobs[job_id].shards)
            for job_id, p in status["progress"].items()
        }
        self.outcome.lost, self.outcome.duplicates = lost_and_duplicates(accepted, needed, records)
        self.outcome.executions_total = sum(p["total"] for p in status["progress"].values())
        self.outcome.executions_done = sum(p["accepted"] for p in status["progress"].values())
        self.outcome.owner_violations = owner_shortfalls(self.fleet) + self.floor_breaches


def _health(port: int) -> int | None:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            return int(stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status)
    except grpc.RpcError:
        return None


def _read_all(kafka: KafkaSettings, streams: list[Stream]) -> list[Message]:
    seen: list[Message] = []
    reader = StreamReader(kafka, None, streams, lambda _s, m: seen.append(m), None).start()
    try:
        if not reader.wait_caught_up(timeout_s=60):
            raise RuntimeError("could not read the topics back")
    finally:
        reader.stop()
    return seen


def run_chaos(config: ChaosConfig, progress: bool = False) -> list[ChaosOutcome]:
    """Every run's outcome; prints a line per run and the summary line last."""
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="idlefleet-chaos-") as scratch:
        base = config.work_dir or Path(scratch)
        for run in range(1, config.runs + 1):
            directory = base / f"run-{run}"
            directory.mkdir(parents=True, exist_ok=True)
            outcome = ChaosRun(config, run, directory).play(progress)
            print(outcome.line(), flush=True)
            for violation in outcome.owner_violations[:5]:
                print(f"  owner violation: {violation}", flush=True)
            outcomes.append(outcome)
    return outcomes


def summary_line(outcomes: list[ChaosOutcome]) -> str:
    return (
        f"runs={len(outcomes)} lost={sum(o.lost for o in outcomes)} "
        f"duplicates={sum(o.duplicates for o in outcomes)} "
        f"owner_violations={sum(len(o.owner_violations) for o in outcomes)}"
    )
