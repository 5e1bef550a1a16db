"""The console's options of `idlefleet serve`, and serving it on its own thread (uvicorn).

`--web-port P [--web-host H]` (P 0: off). A lab serves it by default on port 8080 (any
free port when that one is taken); elsewhere it is off until `--web-port` names a port. It
signs callers in with the gRPC API's token file (`--tokens`, or a lab's token), binds
loopback unless told otherwise and serves plain HTTP only there: elsewhere it needs
`--tls-cert` and `--tls-key` like the API.
The Grid page's what-ifs run in a solver child of the console's own, started by the first.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from idlefleet.queries.health import HealthSource
    from idlefleet.queries.ports import FleetBackend
    from idlefleet.settings import ApiSettings
    from idlefleet.tokens import TokenTable

log = logging.getLogger(__name__)

#: What the console runs on (the `web` extra).
WEB_MODULES = ("fastapi", "uvicorn", "jinja2", "python_multipart", "itsdangerous")
#: The port a lab's console takes when it is free.
LAB_WEB_PORT = 8080
#: How long the console may take to start listening [s].
START_TIMEOUT_S = 15.0


class WebConfigError(ValueError):
    """The console's options do not fit together."""


@dataclass(frozen=True)
class WebConfig:
    """Where the console listens (`port` 0: any free port) and over which TLS files."""

    host: str
    port: int
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def url(self, port: int) -> str:
        """Where a browser finds the console listening on `port`."""
        scheme = "http" if self.tls_cert is None else "https"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{port}/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("web console")
    group.add_argument(
        "--web-port",
        type=int,
        default=None,
        help=f"serve the web console on this port (0: off; a lab's default: {LAB_WEB_PORT}, "
        "or any free port when that one is taken)",
    )
    group.add_argument(
        "--web-host", default="127.0.0.1", help="address the console binds (default: 127.0.0.1)"
    )


def web_config(args: argparse.Namespace, lab: bool = False) -> WebConfig | None:
    """The console's configuration, or None when it is off: `--web-port 0`, or no
    `--web-port` outside a `lab` (a lab's console listens on `lab_web_port()`)."""
    port: int | None = args.web_port
    missing = [name for name in WEB_MODULES if importlib.util.find_spec(name) is None]
    if port is None:
        if not lab:
            return None
        if missing:  # a lab without the web extra serves everything else
            log.warning("no web console: it needs %s ('idlefleet[web]')", ", ".join(missing))
            return None
        port = lab_web_port(args.web_host)
    elif port == 0:
        return None
    elif not 0 < port < 65536:
        raise WebConfigError(f"--web-port must be 0 (off) or a port 1-65535, got {port}")
    if missing:
        raise WebConfigError(
            f"the web console needs {', '.join(missing)}: pip install 'idlefleet[web]'"
        )
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if cert is None and not _loopback(args.web_host):
        raise WebConfigError(
            f"--web-host {args.web_host} is not loopback: serve the console there only over "
            "TLS (--tls-cert and --tls-key)"
        )
    return WebConfig(args.web_host, port, cert, key)


def lab_web_port(host: str) -> int:
    """`LAB_WEB_PORT` when it is free on `host`, else 0 (any free port)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, LAB_WEB_PORT))
        except OSError:
            return 0
    return LAB_WEB_PORT


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def serving_web(
    config: WebConfig | None,
    backend: FleetBackend,
    tokens: TokenTable | None,
    health: HealthSource,
    *,
    api_target: str | None = None,
    limits: ApiSettings | None = None,
) -> Iterator[int | None]:
    """Serve the console over `backend` on a thread while the block runs, signing callers in
    with `tokens` and bounding what-ifs by `limits` (default: the API's defaults); the bound
    port (None: no console). RuntimeError when it does not start listening. `api_target` is
    the gRPC API's HOST:PORT, named in the Jobs page's submit command."""
    if config is None:
        yield None
        return
    if tokens is None:
        raise WebConfigError("the web console needs a token file to sign callers in")
    import uvicorn

    from idlefleet.queries.solver import ApiSolver
    from idlefleet.queries.what_if import WhatIfRunner
    from idlefleet.settings import ApiSettings
    from idlefleet.web.app import create_app

    limits = limits or ApiSettings()
    solver = ApiSolver(limits.solves_max_waiting)
    planner = backend.settings
    what_if = WhatIfRunner(solver, limits, planner.solver_time_limit_s, planner.solver_mip_gap_frac)
    app = create_app(
        backend,
        tokens,
        health,
        secure_cookies=config.tls_cert is not None,
        api_target=api_target,
        what_if=what_if,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            ssl_certfile=None if config.tls_cert is None else str(config.tls_cert),
            ssl_keyfile=None if config.tls_key is None else str(config.tls_key),
        )
    )
    thread = threading.Thread(target=server.run, name="web-console", daemon=True)
    thread.start()
    try:
        yield _bound_port(server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        solver.close()


def _bound_port(server: object, thread: threading.Thread) -> int:
    """The port uvicorn listens on, once it does."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if getattr(server, "started", False):
            servers = getattr(server, "servers", [])
            for listening in servers:
                for sock in listening.sockets:
                    port: int = sock.getsockname()[1]
                    return port
        if not thread.is_alive():
            raise RuntimeError("the web console stopped while starting (is the port taken?)")
        time.sleep(0.02)
    raise RuntimeError(f"the web console did not start within {START_TIMEOUT_S:.0f} s")
