"""The fleet the API and query tests share: two depots, four cars, PV and intensity for 8 h,
a planned in-process backend, a stand-in planner service reading the jobs topic, bearer tokens
and real gRPC servers on port 0."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from executor.ledger import JobLedger, LedgerSnapshot
from idlefleet.api.auth import Role, TokenTable
from idlefleet.api.health import solver_answers
from idlefleet.api.server import ApiServer, TlsConfig, create_server
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.ports import FleetBackend
from idlefleet.queries.solver import ApiSolver
from idlefleet.service.inputs import JobDemand, open_demands
from idlefleet.settings import PlannerSettings
from idlefleet.sim.clock import SteppedClock
from idlefleet.sites import SiteConfig
from optimizer.plan import PlanSnapshot
from streams.catalog import SHA256_EXAMPLE, T0
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.messages import Job, Message
from streams.producer import Publisher
from streams.sources import DataNote
from streams.state import FleetState
from streams.topics import Stream
from streams.trust import Trust
from tests.streams.factories import grid_signal, job, solar_forecast, telemetry

SETTINGS = PlannerSettings(slot_minutes=15, horizon_hours=4, solver_time_limit_s=10)
SITES = [
    SiteConfig(
        site_id="berlin-depot",
        region="DE",
        timezone="Europe/Berlin",
        latitude_deg=52.5,
        longitude_deg=13.4,
        grid_limit_kw=30.0,
    ),
    SiteConfig(
        site_id="london-depot",
        region="GB",
        timezone="Europe/London",
        latitude_deg=51.5,
        longitude_deg=-0.1,
        grid_limit_kw=22.0,
    ),
]
SLOTS = 32  # forecasts cover 8 h, the plan 4 h (16 slots)
KAFKA_WAIT_S = 20.0


CARS = (
    telemetry(
        "car-a", energy_kwh=30.0, target_kwh=50.0, expected_departure=T0 + timedelta(hours=3)
    ),
    telemetry("car-b", energy_kwh=50.0, target_kwh=60.0, expected_departure=None),
    telemetry(
        "car-c",
        site_id="london-depot",
        energy_kwh=20.0,
        target_kwh=40.0,
        expected_departure=T0 + timedelta(hours=2),
    ),
    telemetry("car-d", site_id="london-depot", energy_kwh=40.0, participating=False),
)


def stamp(hours: float) -> Timestamp:
    """T0 + `hours` as a protobuf timestamp."""
    out = Timestamp()
    out.FromDatetime(T0 + timedelta(hours=hours))
    return out


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    """The error `call` ends with."""
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value


def job_spec(job_id: str = "new-job", shards: int = 3, **changes: object) -> pb.JobSpec:
    fields: dict[str, Any] = {
        "job_id": job_id,
        "model": pb.ModelRef(uri="file:///srv/models/m.onnx", sha256=SHA256_EXAMPLE),
        "input_uris": [f"file:///srv/in/{job_id}/{i}.npy" for i in range(shards)],
        "output_uri": f"file:///srv/out/{job_id}",
        "value_per_shard": 0.5,
        "release": stamp(0),
        "deadline": stamp(2),
        **changes,
    }
    return pb.JobSpec(**fields)


def fill(state: FleetState) -> None:
    """Cars, PV at Berlin and grid intensity for both regions, from T0 for 8 hours."""
    for report in CARS:
        state.apply_telemetry(report)
    for region, base in (("DE", 300.0), ("GB", 200.0)):
        intensity = [base + 100.0 * (s % 4 == 0) for s in range(SLOTS)]
        state.apply_grid(grid_signal(intensity, region=region))
    state.apply_solar(solar_forecast([8.0 if 4 <= s < 12 else 0.0 for s in range(SLOTS)]))


@pytest.fixture
def clock() -> SteppedClock:
    """T0 until a test moves it."""
    return SteppedClock(T0)


@pytest.fixture
def backend(clock: SteppedClock) -> LocalBackend:
    """The fleet, a job, and a MILP plan published."""
    backend = LocalBackend(SITES, SETTINGS, clock)
    fill(backend.state)
    backend.submit_job(job())
    backend.replan()
    return backend


@dataclass
class Tokens:
    table: TokenTable
    by_role: dict[Role, str] = field(default_factory=dict)

    def metadata(self, role: Role) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.by_role[role]}"),)


#: The car the test owner token speaks for (`Tokens.by_role[Role.OWNER]`).
OWNED_CAR = "car-a"


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    """A token per role; the owner's is the owner of car-a."""
    by_role = {role: secrets.token_urlsafe(24) for role in Role}
    text = "\n".join(
        f"{token} {f'owner:{OWNED_CAR}' if role is Role.OWNER else role.name.lower()}"
        for role, token in by_role.items()
    )
    return Tokens(TokenTable.parse(f"# test tokens\n{text}\n"), by_role)


ServerFactory = Callable[..., tuple[ApiServer, int]]


@pytest.fixture(scope="session")
def api_solver() -> Iterator[ApiSolver]:
    """One solver child for every test server (starting one imports Pyomo: seconds)."""
    solver = ApiSolver()
    yield solver
    solver.close()


@pytest.fixture
def serve(tokens: Tokens, api_solver: ApiSolver) -> Iterator[ServerFactory]:
    """Start servers on 127.0.0.1:0; every one is stopped after the test."""
    started: list[ApiServer] = []

    def start(
        backend: FleetBackend, tls: TlsConfig | None = None, **options: Any
    ) -> tuple[ApiServer, int]:
        options.setdefault("probes", {"solver": solver_answers})
        options.setdefault("solver", api_solver)
        server, port = create_server(backend, 0, tokens.table, tls, host="127.0.0.1", **options)
        started.append(server.start())
        return server, port

    yield start
    for server in started:
        server.stop(grace_s=0)


class ReadingPlanner:
    """Stands for the planner service: real fleet state and ledger, the ledger filled by a real
    reader of the jobs topic, and the members the API adapter needs from the service."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.state = FleetState()
        self.ledger = JobLedger()
        self.settings = SETTINGS
        self.sites = list(SITES)
        self.current_plan: PlanSnapshot | None = None
        self.cancelled_jobs: frozenset[str] = frozenset()
        self.trust: Trust | None = None  # this stand-in checks no records
        self.intensity_fallback = None  # plans only on published intensity
        self._publisher = Publisher(kafka)
        self._reader = StreamReader(
            kafka, "api-test", [Stream.JOBS], self._on_record, self._publisher
        )

    def _on_record(self, stream: Stream, message: Message) -> None:
        assert isinstance(message, Job)
        self.ledger.register(message)

    def current_plan_notes(self) -> tuple[PlanSnapshot | None, tuple[DataNote, ...]]:
        return self.current_plan, ()

    def ledger_snapshot(self) -> LedgerSnapshot:
        return self.ledger.snapshot()

    def open_demands(self) -> list[JobDemand]:
        return open_demands(self.ledger, self.cancelled_jobs)

    def cancel_job(self, job_id: str) -> bool:
        cancelled = job_id not in self.cancelled_jobs
        self.cancelled_jobs |= {job_id}
        return cancelled

    def start(self) -> ReadingPlanner:
        """Start reading; return once the reader has joined and read the topic."""
        self._reader.start()
        assert self._reader.wait_caught_up(KAFKA_WAIT_S)
        return self

    def stop(self) -> None:
        self._reader.stop()
        self._publisher.close()


@pytest.fixture
def planner(kafka_settings: KafkaSettings) -> Iterator[ReadingPlanner]:
    planner = ReadingPlanner(kafka_settings).start()
    fill(planner.state)
    yield planner
    planner.stop()
