"""The gRPC API's options of `idlefleet serve`, and serving it beside the planner service.

`--grpc-port P --tokens FILE [--grpc-host H] [--tls-cert PEM --tls-key PEM
[--tls-client-ca PEM]] [--grpc-reflection] [--insecure-grpc-off-loopback]`. The API binds
loopback unless told otherwise, and plaintext only there unless waived. Its bounds come
from `ApiSettings` (IDLEFLEET_* variables). Options are checked and files read before
anything starts; gRPC is imported only when serving.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from idlefleet.settings import ApiSettings
from streams.identity import write_private

if TYPE_CHECKING:
    from idlefleet.api.auth import TokenTable
    from idlefleet.api.server import TlsConfig
    from idlefleet.queries.service_backend import PlannerPort, ServiceBackend
    from streams.clients import KafkaSettings
    from streams.identity import Authority
    from streams.producer import Publisher


class ApiConfigError(ValueError):
    """The API's options do not fit together, or a file cannot be read."""


@dataclass(frozen=True)
class ApiConfig:
    host: str
    port: int
    tokens: TokenTable
    tls: TlsConfig | None
    settings: ApiSettings = field(default_factory=ApiSettings)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gRPC API")
    group.add_argument("--grpc-port", type=int, help="serve the gRPC API on this port (0: any)")
    group.add_argument(
        "--grpc-host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)"
    )
    group.add_argument(
        "--tokens",
        type=Path,
        help="bearer tokens, one 'TOKEN ROLE [NAME]' per line "
        "(viewer|operator|admin|owner:VEHICLE_ID)",
    )
    group.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve over TLS")
    group.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    group.add_argument("--tls-client-ca", type=Path, help="PEM CA: require client certificates")
    group.add_argument(
        "--grpc-reflection",
        action="store_true",
        default=None,
        help="serve reflection (to callers with a token); default off",
    )
    group.add_argument(
        "--insecure-grpc-off-loopback",
        action="store_true",
        default=None,
        help="allow plaintext (no --tls-cert) on an address other than loopback",
    )


def api_config(args: argparse.Namespace) -> ApiConfig | None:
    """The API's configuration, or None without --grpc-port."""
    from idlefleet.api.auth import TokenFileError, TokenTable
    from idlefleet.api.server import InsecureBindError, TlsConfig, check_plaintext_bind

    if args.grpc_port is None:
        if args.tokens or args.tls_cert or args.tls_key or args.tls_client_ca:
            raise ApiConfigError("--tokens and --tls-* need --grpc-port")
        return None
    if args.tokens is None:
        raise ApiConfigError("--grpc-port needs --tokens FILE")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ApiConfigError("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise ApiConfigError("--tls-client-ca needs --tls-cert and --tls-key")
    settings = api_settings(args)
    if args.tls_cert is None:
        try:
            check_plaintext_bind(args.grpc_host, settings)
        except InsecureBindError as exc:
            raise ApiConfigError(str(exc)) from exc
    try:
        tokens = TokenTable.load(args.tokens)
        tls = (
            None
            if args.tls_cert is None
            else TlsConfig.from_files(args.tls_cert, args.tls_key, args.tls_client_ca)
        )
    except TokenFileError as exc:
        raise ApiConfigError(str(exc)) from exc
    except OSError as exc:
        raise ApiConfigError(f"{exc.filename}: {exc.strerror}") from exc
    return ApiConfig(args.grpc_host, args.grpc_port, tokens, tls, settings)


#: Where a lab `serve` offers the API unless told otherwise (clients' default target).
LAB_GRPC_PORT = 50051


def lab_api_config(args: argparse.Namespace, token_path: Path) -> ApiConfig:
    """A lab's API: loopback, `--grpc-port` or 50051 (any free port when that one is taken),
    and the token in `token_path` (made on first use, mode 0600, role admin: the lab's
    operator) unless `--tokens` names others. ApiConfigError as `api_config`."""
    import secrets
    import socket

    port = args.grpc_port
    if port is None:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", LAB_GRPC_PORT))
                port = LAB_GRPC_PORT
            except OSError:
                port = 0
    if args.tokens is None and not token_path.exists():
        write_private(token_path, f"{secrets.token_urlsafe(32)} admin lab\n".encode())
    lab = argparse.Namespace(**{**vars(args), "grpc_port": port})
    lab.tokens = args.tokens or token_path
    config = api_config(lab)
    assert config is not None
    return config


def api_settings(args: argparse.Namespace) -> ApiSettings:
    """IDLEFLEET_* variables, overridden by the flags given."""
    flags: dict[str, Any] = {
        "grpc_reflection": args.grpc_reflection,
        "grpc_insecure_off_loopback": args.insecure_grpc_off_loopback,
    }
    try:
        return ApiSettings(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as exc:
        raise ApiConfigError(f"API settings: {exc}") from exc


@contextmanager
def serving_api(
    config: ApiConfig | None,
    service: PlannerPort,
    kafka: KafkaSettings,
    clock: Callable[[], datetime] | None = None,
    *,
    publisher: Publisher,
    authority: Authority | None = None,
    health_notes: Callable[[], Sequence[str]] | None = None,
    backend: ServiceBackend | None = None,
) -> Iterator[int | None]:
    """Serve the API over `service` while the block runs; the bound port (None: no API).

    Submitted jobs and DR caps go out through `publisher` (the service's, signing with its
    key). Admins enroll and revoke keys when the service holds the fleet `authority`'s key.
    `clock` is the service's time (default: the wall clock, UTC). `health_notes` say why the
    service is degraded while it serves (logged by the health monitor when they change).
    `backend` is one already following `service` that other adapters share (the caller
    starts and closes it); by default the API starts its own."""
    if config is None:
        yield None
        return
    from idlefleet.api.health import broker_probe, solver_answers
    from idlefleet.api.server import create_server
    from idlefleet.queries.registry_desk import RegistryDesk
    from idlefleet.queries.service_backend import ServiceBackend, wall_clock
    from idlefleet.queries.solver import ApiSolver

    own = backend is None
    if backend is None:
        backend = ServiceBackend(service, publisher, clock or wall_clock).start()
    solver = ApiSolver(config.settings.solves_max_waiting).start()
    try:
        server, port = create_server(
            backend,
            config.port,
            config.tokens,
            config.tls,
            host=config.host,
            probes={"broker": broker_probe(kafka.bootstrap_servers), "solver": solver_answers},
            settings=config.settings,
            solver=solver,
            registry=RegistryDesk(service.trust, authority),
            health_notes=health_notes,
        )
        server.start()
        try:
            yield port
        finally:
            server.stop()
    finally:
        solver.close()
        if own:
            backend.close()
