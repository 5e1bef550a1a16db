"""The gRPC server: FleetPlanner, health and (when asked for) reflection registered together,
and shut down gracefully together.

`create_server` binds the port (0 picks a free one) and returns it, so that tests and
benchmarks talk to a real server over a real channel. It binds loopback by default, and
plaintext only there unless `ApiSettings.grpc_insecure_off_loopback` waives it: bearer
tokens must not cross a network in clear.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from idlefleet.api.auth import BearerAuth, TokenTable
from idlefleet.api.health import DEFAULT_INTERVAL_S, HealthMonitor, Notes, Probe, solver_answers
from idlefleet.api.limits import CallLimits
from idlefleet.api.servicer import FleetPlannerServicer
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.demand_response import DemandResponseDesk
from idlefleet.queries.ports import FleetBackend
from idlefleet.queries.registry_desk import RegistryDesk
from idlefleet.queries.solver import ApiSolver
from idlefleet.queries.what_if import WhatIfRunner
from idlefleet.settings import ApiSettings

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FleetPlanner"].full_name
DEFAULT_HOST = "127.0.0.1"
DEFAULT_GRACE_S = 5.0
#: Largest request the server reads [bytes] (gRPC's default, pinned here): a larger one ends
#: RESOURCE_EXHAUSTED before authentication or any servicer runs.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


class InsecureBindError(ValueError):
    """Plaintext asked for on an address other than loopback, without the waiver."""


def is_loopback(host: str) -> bool:
    """Whether `host` (an address, `[v6]`, or `localhost`) is this machine's loopback; a
    name other than localhost is not (it may resolve anywhere)."""
    bare = host.strip("[]")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def check_plaintext_bind(host: str, settings: ApiSettings) -> None:
    """InsecureBindError for plaintext on `host` off loopback, unless waived."""
    if not is_loopback(host) and not settings.grpc_insecure_off_loopback:
        raise InsecureBindError(
            f"refusing to serve the gRPC API in plaintext on {host}: bearer tokens would "
            "cross the network in clear. Give --tls-cert and --tls-key, bind loopback "
            "(--grpc-host 127.0.0.1), or waive this with --insecure-grpc-off-loopback "
            "(IDLEFLEET_GRPC_INSECURE_OFF_LOOPBACK=true)"
        )


@dataclass(frozen=True)
class TlsConfig:
    """PEM server certificate chain and key; a client CA turns on mutual TLS."""

    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = None

    @classmethod
    def from_files(cls, cert: Path, key: Path, client_ca: Path | None = None) -> TlsConfig:
        return cls(
            certificate_chain=cert.read_bytes(),
            private_key=key.read_bytes(),
            client_ca=None if client_ca is None else client_ca.read_bytes(),
        )

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


class ApiServer:
    """A bound gRPC server with its health monitor; `stop` drains it gracefully."""

    def __init__(
        self,
        server: grpc.Server,
        backend: FleetBackend,
        health_servicer: health.HealthServicer,
        monitor: HealthMonitor,
        owned_solver: ApiSolver | None,
    ) -> None:
        self._server = server
        self._backend = backend
        self._health = health_servicer
        self._monitor = monitor
        self._owned_solver = owned_solver

    def start(self) -> ApiServer:
        self._monitor.start()
        self._server.start()
        return self

    def stop(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """NOT_SERVING first, end plan watches, let calls in flight finish within `grace_s`."""
        self._health.enter_graceful_shutdown()
        self._monitor.stop()
        self._backend.board.close()
        self._server.stop(grace_s).wait()
        if self._owned_solver is not None:
            self._owned_solver.close()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def create_server(
    backend: FleetBackend,
    port: int,
    tokens: TokenTable,
    tls: TlsConfig | None = None,
    *,
    host: str = DEFAULT_HOST,
    probes: Mapping[str, Probe] | None = None,
    settings: ApiSettings | None = None,
    solver: ApiSolver | None = None,
    registry: RegistryDesk | None = None,
    health_interval_s: float = DEFAULT_INTERVAL_S,
    health_notes: Notes | None = None,
) -> tuple[ApiServer, int]:
    """A server for `backend` bound to `host:port` (0: any free port), not yet started.

    `probes` decide health (default: the solver only; the service adds its broker);
    `health_notes` say why it is degraded while serving (`HealthMonitor`).
    What-ifs and DR decisions run in `solver` (default: one of the server's own, stopped
    with it). `registry` serves the fleet registry (default: none kept). InsecureBindError
    for plaintext off loopback unless `settings` waive it.
    """
    settings = settings or ApiSettings()
    if tls is None:
        check_plaintext_bind(host, settings)
    owned_solver = None
    if solver is None:
        solver = owned_solver = ApiSolver(settings.solves_max_waiting)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.grpc_max_workers, thread_name_prefix="api"),
        interceptors=[
            BearerAuth(tokens),
            CallLimits(settings.grpc_max_workers, settings.grpc_max_streams),
        ],
        options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES)],
        maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
    )
    planner = backend.settings
    what_if = WhatIfRunner(
        solver, settings, planner.solver_time_limit_s, planner.solver_mip_gap_frac
    )
    demand_response = DemandResponseDesk(backend, solver, settings.dr_decision_deadline_s)
    pb_grpc.add_FleetPlannerServicer_to_server(
        FleetPlannerServicer(
            backend, tokens, what_if, demand_response, registry or RegistryDesk(None, None)
        ),
        server,
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.grpc_reflection:
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_name, reflection.SERVICE_NAME), server
        )
    address = f"{host}:{port}"
    if tls is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, tls.credentials())
    if bound == 0:
        raise OSError(f"cannot bind the gRPC API to {address}")
    monitor = HealthMonitor(
        health_servicer,
        [SERVICE_NAME],
        probes or {"solver": solver_answers},
        health_interval_s,
        notes=health_notes,
    )
    log.info("gRPC API on %s:%d (%s)", host, bound, "TLS" if tls else "plaintext")
    return ApiServer(server, backend, health_servicer, monitor, owned_solver), bound
