"""A real gRPC server on port 0 over an in-process backend with a planned fleet."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf.timestamp_pb2 import Timestamp

from executor.ledger import JobLedger
from idlefleet.api.auth import Role, TokenTable
from idlefleet.api.health import solver_answers
from idlefleet.api.server import ApiServer, TlsConfig, create_server
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.ports import FleetBackend
from idlefleet.settings import PlannerSettings
from idlefleet.sites import SiteConfig
from optimizer.plan import PlanSnapshot
from streams.catalog import EXAMPLES, SHA256_EXAMPLE, T0
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.messages import GridSignal, Job, Message, SolarForecast, Telemetry
from streams.producer import Publisher
from streams.state import FleetState
from streams.topics import Stream

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


def car(vehicle_id: str, **changes: object) -> Telemetry:
    fields = EXAMPLES[Stream.TELEMETRY].model_dump()
    fields.update(vehicle_id=vehicle_id, **changes)
    return Telemetry.model_validate(fields)


CARS = (
    car("car-a", energy_kwh=30.0, target_kwh=50.0, expected_departure=T0 + timedelta(hours=3)),
    car("car-b", energy_kwh=50.0, target_kwh=60.0, expected_departure=None),
    car(
        "car-c",
        site_id="london-depot",
        energy_kwh=20.0,
        target_kwh=40.0,
        expected_departure=T0 + timedelta(hours=2),
    ),
    car("car-d", site_id="london-depot", energy_kwh=40.0, participating=False),
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


def job(job_id: str = "embed-1", shards: int = 4, **changes: object) -> Job:
    example = EXAMPLES[Stream.JOBS]
    assert isinstance(example, Job)
    uris = [f"file:///srv/in/{job_id}/{i}.npy" for i in range(shards)]
    return example.model_copy(
        update={"job_id": job_id, "input_uris": uris, "replicas": 1, **changes}
    )


def fill(state: FleetState) -> None:
    """Cars, PV at Berlin and grid intensity for both regions, from T0 for 8 hours."""
    for telemetry in CARS:
        state.apply_telemetry(telemetry)
    for region, base in (("DE", 300.0), ("GB", 200.0)):
        state.apply_grid(
            GridSignal(
                region=region,
                issued_at=T0,
                start=T0,
                slot_minutes=15,
                kind="forecast",
                source="test",
                intensity_g_per_kwh=[base + 100.0 * (s % 4 == 0) for s in range(SLOTS)],
            )
        )
    state.apply_solar(
        SolarForecast(
            site_id="berlin-depot",
            issued_at=T0,
            start=T0,
            slot_minutes=15,
            source="test",
            pv_kw=[8.0 if 4 <= s < 12 else 0.0 for s in range(SLOTS)],
        )
    )


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backend(clock: Clock) -> LocalBackend:
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


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    by_role = {role: secrets.token_urlsafe(24) for role in Role}
    text = "\n".join(f"{token} {role.name.lower()}" for role, token in by_role.items())
    return Tokens(TokenTable.parse(f"# test tokens\n{text}\n"), by_role)


ServerFactory = Callable[..., tuple[ApiServer, int]]


@pytest.fixture
def serve(tokens: Tokens) -> Iterator[ServerFactory]:
    """Start servers on 127.0.0.1:0; every one is stopped after the test."""
    started: list[ApiServer] = []

    def start(
        backend: FleetBackend, tls: TlsConfig | None = None, **options: Any
    ) -> tuple[ApiServer, int]:
        options.setdefault("probes", {"solver": solver_answers})
        server, port = create_server(backend, 0, tokens.table, tls, host="127.0.0.1", **options)
        started.append(server.start())
        return server, port

    yield start
    for server in started:
        server.stop(grace_s=0)


@pytest.fixture
def channel(serve: ServerFactory, backend: LocalBackend) -> Iterator[grpc.Channel]:
    """A plaintext channel to a server over `backend`."""
    _, port = serve(backend)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.FleetPlannerStub:
    return pb_grpc.FleetPlannerStub(channel)


@dataclass(frozen=True)
class Pki:
    """PEM bytes: a CA, a server certificate for 127.0.0.1/localhost and a client one."""

    ca_cert: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes
    other_ca_cert: bytes


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def pki() -> Pki:
    pem = serialization.Encoding.PEM
    ca_key, server_key, client_key, other_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in range(4)
    )
    ca = _issue("idlefleet test CA", ca_key, None, ca=True)
    issuer = (ca.subject, ca_key)
    return Pki(
        ca_cert=ca.public_bytes(pem),
        server_cert=_issue("localhost", server_key, issuer, server=True).public_bytes(pem),
        server_key=_pem_key(server_key),
        client_cert=_issue("planner-client", client_key, issuer).public_bytes(pem),
        client_key=_pem_key(client_key),
        other_ca_cert=_issue("another CA", other_key, None, ca=True).public_bytes(pem),
    )


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
        self._publisher = Publisher(kafka)
        self._reader = StreamReader(
            kafka, "api-test", [Stream.JOBS], self._on_record, self._publisher
        )

    def _on_record(self, stream: Stream, message: Message) -> None:
        assert isinstance(message, Job)
        self.ledger.register(message)

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
