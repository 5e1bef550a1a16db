"""The executor end to end on the real broker: the planner service dispatches, car agents
(`AgentService`, and `idlefleet agent` processes) run a real ONNX model, and the service
takes work back from cars that depart or whose agent is killed, validates replicas and
counts every shard once. How soon a departing car stops is measured by `idlefleet bench
departure`, not timed here.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from executor.agent import AgentPool, LoggedCharger, VehicleAgent
from executor.runtime import OnnxRunner, RunOutcome
from executor.service import AgentService
from idlefleet.service.planner import PlannerService
from idlefleet.settings import PlannerSettings
from idlefleet.sim.clock import SteppedClock
from idlefleet.sites import SiteConfig
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.identity import Identity
from streams.messages import (
    Assignment,
    GridSignal,
    Heartbeat,
    Job,
    Message,
    ModelRef,
    Result,
    Telemetry,
)
from streams.serde import encode
from streams.signing import RecordSigner
from streams.topics import Stream
from tests.streams import factories

REPO = Path(__file__).parents[2]
SLOT = timedelta(minutes=15)
SITE = SiteConfig(
    site_id="depot",
    region="DE",
    timezone="Europe/Berlin",
    latitude_deg=52.5,
    longitude_deg=13.4,
    grid_limit_kw=50.0,
)
WIDTH = 512
LAYERS = 96
ROWS = 20_000


def slow_model_bytes() -> bytes:
    """[n, 512] -> [n, 512] through 96 dense tanh layers sharing one weight: a few seconds
    on a shard of `ROWS` rows."""
    rng = np.random.default_rng(3)
    weight = (rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
    nodes, name = [], "x"
    for layer in range(LAYERS):
        nodes.append(helper.make_node("MatMul", [name, "w"], [f"m{layer}"]))
        out = "y" if layer == LAYERS - 1 else f"h{layer}"
        nodes.append(helper.make_node("Tanh", [f"m{layer}"], [out]))
        name = out
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", WIDTH])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_job(
    tmp_path: Path, job_id: str, rows: list[int], now: datetime, replicas: int = 1
) -> Job:
    """A job of the slow model, one shard of `rows[i]` rows each."""
    data = slow_model_bytes()
    model_path = tmp_path / "slow.onnx"
    model_path.write_bytes(data)
    rng = np.random.default_rng(len(rows))
    uris = []
    for index, count in enumerate(rows):
        path = tmp_path / f"{job_id}-{index}.npy"
        np.save(path, rng.standard_normal((count, WIDTH)).astype(np.float32))
        uris.append(path.as_uri())
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return factories.job(
        job_id,
        len(rows),
        model=ModelRef(uri=model_path.as_uri(), sha256=hashlib.sha256(data).hexdigest()),
        input_uris=uris,
        output_uri=out.as_uri(),
        replicas=replicas,
        value_per_shard=50.0,
        submitted_at=now - timedelta(minutes=5),
        release=now,
        deadline=now + 3 * SLOT,
    )


def grid_signal(now: datetime) -> GridSignal:
    """Rising from the first slot on: every plan runs open work as early as it can."""
    intensity = [400.0] + [100.0 + 50 * k for k in range(11)]
    return factories.grid_signal(intensity, start=now - SLOT, issued_at=now - timedelta(hours=1))


def telemetry(
    vehicle_id: str, at: datetime, *, parked: bool = True, shards_per_slot: int = 1
) -> Telemetry:
    """The car at the depot, plugged in (or gone), owed nothing it does not have."""
    return factories.telemetry(
        vehicle_id,
        event_time=at,
        site_id="depot" if parked else None,
        plugged_in=parked,
        energy_kwh=50.0,
        reserve_kwh=10.0,
        target_kwh=50.0,
        expected_departure=at + timedelta(hours=1),
        shards_per_slot=shards_per_slot,
    )


class Collector:
    """Everything published on some streams, as it arrives."""

    def __init__(self, kafka: KafkaSettings, streams: list[Stream]) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._reader = StreamReader(kafka, None, streams, self._add, None)

    def _add(self, stream: Stream, message: Message) -> None:
        with self._lock:
            self.messages.append(message)

    def of(self, kind: type[Message]) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if isinstance(m, kind)]

    def wait_for(self, predicate: Callable[[Message], bool], timeout_s: float = 60.0) -> Message:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                found = next((m for m in self.messages if predicate(m)), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError("the awaited message never arrived")

    def __enter__(self) -> Collector:
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.stop()


CARS = ("car-a", "car-b", "honest-1", "honest-2", "liar")


@pytest.fixture
def world(kafka_settings: KafkaSettings) -> Iterator[factories.World]:
    """The planner and every car of these tests enrolled; records signed by who sends them."""
    world = factories.World(kafka_settings, {"planner": "service", **dict.fromkeys(CARS, "car")})
    yield world
    world.stop()


def planner(world: factories.World, heartbeat_timeout_s: float = 60.0) -> PlannerService:
    settings = PlannerSettings(
        horizon_hours=1, solver_time_limit_s=10, heartbeat_timeout_s=heartbeat_timeout_s
    )
    return PlannerService(world.kafka, settings, [SITE], trust=world.trust("planner")).start()


@pytest.fixture
def running(kafka_settings: KafkaSettings) -> Iterator[list[object]]:
    """Things to stop at the end of the test, last started first."""
    things: list[object] = []
    yield things
    for thing in reversed(things):
        thing.stop()  # type: ignore[attr-defined]


def agent_service(
    world: factories.World,
    vehicles: list[str],
    clock: SteppedClock,
    runner: OnnxRunner,
    spool_dir: Path,
) -> AgentService:
    pool = AgentPool(VehicleAgent(v, runner, LoggedCharger(v), 0.3, clock) for v in vehicles)
    trust = world.trust(*vehicles)
    return AgentService(
        world.kafka, pool, spool_dir=spool_dir, heartbeat_interval_s=0.5, clock=clock, trust=trust
    ).start()


def work_of(collector: Collector, slot_start: datetime) -> list[tuple[str, str, int]]:
    """(vehicle, work_id, shard) of every work item dispatched for a slot (once some is)."""
    collector.wait_for(
        lambda m: isinstance(m, Assignment) and m.slot_start == slot_start and bool(m.work)
    )
    return [
        (a.vehicle_id, item.work_id, item.shard_index)
        for a in collector.of(Assignment)
        if isinstance(a, Assignment) and a.slot_start == slot_start
        for item in a.work
    ]


def test_a_departing_car_stops_its_shard_and_another_car_finishes_it(
    kafka_settings: KafkaSettings, tmp_path: Path, world: factories.World, running: list[object]
) -> None:
    t0 = datetime(2020, 6, 1, 12, tzinfo=UTC)
    clock = SteppedClock(t0 + timedelta(minutes=1))
    job = write_job(tmp_path, "slow", [ROWS], t0)
    world.publish([grid_signal(t0), telemetry("car-a", t0), telemetry("car-b", t0), job])
    with Collector(kafka_settings, [Stream.ASSIGNMENTS, Stream.RESULTS]) as seen:
        service = planner(world)
        running.append(service)
        agents = agent_service(world, ["car-a", "car-b"], clock, OnnxRunner(), tmp_path / "spool")
        running.append(agents)
        assert service.catch_up()
        assert service.tick(t0).work_items == 1
        [(holder, work_id, _)] = work_of(seen, t0)
        agent = agents.agents.get(holder)
        assert agent is not None
        deadline = time.monotonic() + 30
        while agent.running != work_id:
            assert time.monotonic() < deadline, "the agent never started the shard"
            time.sleep(0.02)
        time.sleep(0.5)  # well into the shard
        clock.now = t0 + timedelta(minutes=2)
        world.publish([telemetry(holder, clock.now, parked=False)])
        stopped = seen.wait_for(lambda m: isinstance(m, Result) and m.work_id == work_id)
        assert isinstance(stopped, Result) and stopped.status == "failed"
        assert stopped.reason is not None and "departed" in stopped.reason
        assert stopped.progress_frac is not None and 0.0 < stopped.progress_frac < 1.0

        other = "car-b" if holder == "car-a" else "car-a"
        clock.now = t0 + SLOT + timedelta(minutes=1)
        assert service.tick(t0 + SLOT).work_items == 1
        assert [v for v, _, _ in work_of(seen, t0 + SLOT)] == [other]
        finished = seen.wait_for(
            lambda m: isinstance(m, Result) and m.vehicle_id == other, timeout_s=120
        )
        assert isinstance(finished, Result) and finished.status == "done"
        assert service.catch_up()
        assert service.status().accepted == {"slow": ((0, other),)}
        assert service.ledger_snapshot().progress["slow"].complete


def test_work_delivered_twice_runs_once_and_counts_once(
    kafka_settings: KafkaSettings, tmp_path: Path, world: factories.World, running: list[object]
) -> None:
    t0 = datetime(2020, 6, 1, 12, tzinfo=UTC)
    clock = SteppedClock(t0 + timedelta(minutes=1))
    job = write_job(tmp_path, "small", [8, 8], t0)
    world.publish([grid_signal(t0), telemetry("car-a", t0), job])
    with Collector(kafka_settings, [Stream.ASSIGNMENTS, Stream.RESULTS]) as seen:
        service = planner(world)
        running.append(service)
        agents = agent_service(world, ["car-a"], clock, OnnxRunner(), tmp_path / "spool")
        running.append(agents)
        assert service.catch_up()
        assert service.tick(t0).work_items == 1
        assignment = seen.wait_for(lambda m: isinstance(m, Assignment) and bool(m.work))
        seen.wait_for(lambda m: isinstance(m, Result))
        world.publish([assignment], "planner")  # the broker delivers it again
        assert agents.wait_caught_up()
        world.publish(seen.of(Result), "car-a")  # and a retried result arrives twice
        assert service.catch_up()
        time.sleep(0.5)
        results = seen.of(Result)
        assert len(results) == 2 and results[0] == results[1]  # the agent ran it once
        assert service.status().results_accepted == 1


class LyingRunner(OnnxRunner):
    """A faulty accelerator: runs the model for real, then returns wrong numbers."""

    def run(self, *args: object, **kwargs: object) -> RunOutcome:
        outcome = super().run(*args, **kwargs)  # type: ignore[arg-type]
        return RunOutcome(outcome.outputs + 1.0, outcome.provider, outcome.runtime_s)


def test_replicas_that_disagree_call_a_tie_breaker_and_the_wrong_car_gets_less_work(
    kafka_settings: KafkaSettings, tmp_path: Path, world: factories.World, running: list[object]
) -> None:
    t0 = datetime(2020, 6, 1, 12, tzinfo=UTC)
    clock = SteppedClock(t0 + timedelta(minutes=1))
    job = write_job(tmp_path, "checked", [4], t0, replicas=2)
    cars = ["honest-1", "honest-2", "liar"]
    world.publish(
        [
            grid_signal(t0),
            telemetry("liar", t0, shards_per_slot=4),
            *(telemetry(car, t0) for car in cars[:2]),
            job,
        ],
    )
    service = planner(world)
    running.append(service)
    honest = agent_service(world, cars[:2], clock, OnnxRunner(), tmp_path / "spool-honest")
    liar = agent_service(world, ["liar"], clock, LyingRunner(), tmp_path / "spool-liar")
    running += [honest, liar]
    assert service.catch_up()
    for k in range(6):  # the planner may spread the replicas and the tie-breaker over slots
        clock.now = t0 + k * SLOT + timedelta(minutes=1)
        service.tick(t0 + k * SLOT)
        assert honest.wait_caught_up() and liar.wait_caught_up()
        deadline = time.monotonic() + 60
        while service.ledger_snapshot().progress["checked"].in_flight:
            assert time.monotonic() < deadline
            time.sleep(0.05)
            service.catch_up()
        if service.validator.canonical("checked", 0) is not None:
            break
    canonical = service.validator.canonical("checked", 0)
    assert canonical is not None and canonical.startswith("honest")
    reliability = service.validator.reliability
    assert reliability.hosts["liar"].wrong == 1 and reliability.suspect("liar")
    assert not reliability.suspect(canonical)
    # Every car heard at the clock's time: a car whose last heartbeat the service read is a
    # slot older than the others' would count as silent and get nothing.
    deadline = time.monotonic() + 30
    while min(service.status().agents_heard.get(car, t0) for car in cars) < clock.now:
        assert time.monotonic() < deadline
        time.sleep(0.05)
        service.catch_up()
    scenario = service.scenario_now(t0 + 3 * SLOT)
    assert scenario is not None
    offered = {v.id: v.shards_per_slot for v in scenario.vehicles}
    heard = service.status().agents_heard
    assert offered["liar"] == 2, (offered, heard, reliability.hosts["liar"])  # half its offer


def test_agents_take_only_assignments_a_service_signed(
    kafka_settings: KafkaSettings, tmp_path: Path, world: factories.World, running: list[object]
) -> None:
    t0 = datetime(2020, 6, 1, 12, tzinfo=UTC)
    clock = SteppedClock(t0 + timedelta(minutes=1))
    job = write_job(tmp_path, "small", [8], t0)
    with Collector(kafka_settings, [Stream.RESULTS]) as seen:
        agents = agent_service(world, ["car-a"], clock, OnnxRunner(), tmp_path / "spool")
        running.append(agents)
        from executor.dispatch import Dispatcher, SlotDispatch
        from executor.ledger import JobLedger

        [genuine] = Dispatcher(JobLedger(), [job]).assignments_for_slot(
            [SlotDispatch("car-a", 11.0, {"small": 1})], t0, t0 + SLOT, "plan-x"
        )
        forged = genuine.model_copy(update={"assignment_id": "forged", "charge_power_kw": 50.0})
        factories.publish(kafka_settings, [forged])  # unsigned
        rogue = Identity.generate("planner", "service")  # a service key nobody enrolled
        factories.publish(kafka_settings, [forged], RecordSigner([rogue]))
        # a car's key (a rooted car) proves nothing about assignments
        factories.publish(kafka_settings, [forged], factories.HandSigner(world.identities["car-b"]))
        # a genuine signature over other bytes: tampered in transit
        signed_headers = RecordSigner([world.identities["planner"]]).headers(
            Stream.ASSIGNMENTS, genuine, b"car-a", encode(genuine)
        )
        factories.publish(kafka_settings, [forged], _FixedHeaders(signed_headers))
        world.publish([genuine], "planner")
        assert agents.wait_idle(30)
        seen.wait_for(lambda m: isinstance(m, Result))
        assert agents._assignments.records_invalid == 4
        # only the genuine assignment ran; the forged ones were never taken, not even refused
        assert [r.assignment_id for r in seen.of(Result)] == [genuine.assignment_id]


class _FixedHeaders:
    def __init__(self, headers: list[tuple[str, bytes]]) -> None:
        self._headers = headers

    def headers(self, stream: Stream, message: object, key: bytes | None, value: bytes):
        return self._headers


def test_an_agent_process_killed_mid_shard_loses_its_work_and_the_shard_completes_once(
    kafka_settings: KafkaSettings, tmp_path: Path, world: factories.World, running: list[object]
) -> None:
    # Agent processes run on the wall clock: plan the slot it is in, or the next one when
    # this one ends within a minute (an agent runs work early, never after its slot).
    wall = datetime.now(UTC)
    now = wall.replace(minute=wall.minute - wall.minute % 15, second=0, microsecond=0)
    if now + SLOT - wall < timedelta(minutes=1):
        now += SLOT
    job = write_job(tmp_path, "slow", [ROWS], now)
    world.publish([grid_signal(now), telemetry("car-a", now), telemetry("car-b", now), job])
    identity_dir = tmp_path / "identities"  # as each car holds its own key
    for car in ("car-a", "car-b"):
        world.identities[car].save(identity_dir / f"{car}.key")
    agents: dict[str, subprocess.Popen[bytes]] = {}
    logs = {car: (tmp_path / f"{car}.log").open("wb") for car in ("car-a", "car-b")}
    try:
        with Collector(
            kafka_settings, [Stream.ASSIGNMENTS, Stream.RESULTS, Stream.HEARTBEATS]
        ) as seen:
            for car in ("car-a", "car-b"):
                agents[car] = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "idlefleet.cli",
                        "agent",
                        "--vehicle-id",
                        car,
                        "--bootstrap-servers",
                        kafka_settings.bootstrap_servers,
                        "--topic-prefix",
                        kafka_settings.topic_prefix,
                        "--heartbeat-interval",
                        "0.5",
                        "--identity-dir",
                        str(identity_dir),
                        "--spool-dir",
                        str(tmp_path / f"{car}-spool"),
                        "--authority-public-key",
                        world.authority.public_key.hex(),
                        "--spool-dir",
                        str(tmp_path / f"spool-{car}"),
                    ],
                    cwd=REPO,
                    stderr=logs[car],
                )
            service = planner(world, heartbeat_timeout_s=3.0)
            running.append(service)
            for car in agents:
                seen.wait_for(lambda m, car=car: isinstance(m, Heartbeat) and m.vehicle_id == car)
            assert service.catch_up()
            assert service.tick(now).work_items == 1
            [(holder, work_id, _)] = work_of(seen, now)
            seen.wait_for(lambda m: isinstance(m, Heartbeat) and work_id in m.running, timeout_s=30)
            agents[holder].kill()  # SIGKILL mid-shard: no result, no goodbye
            agents[holder].wait()
            time.sleep(3.5)  # longer than the heartbeat timeout
            other = "car-b" if holder == "car-a" else "car-a"
            report = service.tick(now + SLOT)
            assert "agent-silent" in (report.replanned.reasons if report.replanned else ())
            assert [v for v, _, _ in work_of(seen, now + SLOT)] == [other]
            done = seen.wait_for(
                lambda m: isinstance(m, Result) and m.vehicle_id == other, timeout_s=120
            )
            assert isinstance(done, Result) and done.status == "done"
            assert service.catch_up()
            status = service.status()
            assert status.accepted == {"slow": ((0, other),)} and status.results_accepted == 1
            assert not [
                r for r in seen.of(Result) if isinstance(r, Result) and r.vehicle_id == holder
            ]
    finally:
        for process in agents.values():
            if process.poll() is None:
                process.terminate()
                process.wait(10)
        for log in logs.values():
            log.close()
