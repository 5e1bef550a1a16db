"""The gRPC server: FleetPlanner, health and reflection registered together, and shut down
gracefully together.

`create_server` binds the port (0 picks a free one) and returns it, so that tests and
benchmarks talk to a real server over a real channel.
"""

from __future__ import annotations

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
from idlefleet.api.health import DEFAULT_INTERVAL_S, HealthMonitor, Probe, solver_answers
from idlefleet.api.servicer import FleetPlannerServicer
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.ports import FleetBackend
from idlefleet.queries.what_if import WhatIfRunner

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FleetPlanner"].full_name
DEFAULT_MAX_WORKERS = 32
DEFAULT_GRACE_S = 5.0
#: Largest request the server reads [bytes] (gRPC's default, pinned here): a larger one ends
#: RESOURCE_EXHAUSTED before authentication or any servicer runs.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


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
    ) -> None:
        self._server = server
        self._backend = backend
        self._health = health_servicer
        self._monitor = monitor

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
    host: str = "[::]",
    probes: Mapping[str, Probe] | None = None,
    what_if: WhatIfRunner | None = None,
    health_interval_s: float = DEFAULT_INTERVAL_S,
    max_workers: int = DEFAULT_MAX_WORKERS,
) -> tuple[ApiServer, int]:
    """A server for `backend` bound to `host:port` (0: any free port), not yet started.

    `probes` decide health (default: the solver only; the service adds its broker).
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="api"),
        interceptors=[BearerAuth(tokens)],
        options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES)],
    )
    pb_grpc.add_FleetPlannerServicer_to_server(
        FleetPlannerServicer(backend, what_if or WhatIfRunner()), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
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
        health_servicer, [SERVICE_NAME], probes or {"solver": solver_answers}, health_interval_s
    )
    log.info("gRPC API on %s:%d (%s)", host, bound, "TLS" if tls else "plaintext")
    return ApiServer(server, backend, health_servicer, monitor), bound
