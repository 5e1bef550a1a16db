"""The demo's web console: the service's pages over the simulated clock, with tokens for an
operator and for every car's owner written beside the demo's output."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from idlefleet.queries.health import health_source
from idlefleet.queries.service_backend import ServiceBackend
from idlefleet.service.planner import PlannerService
from idlefleet.sim.clock import SteppedClock
from idlefleet.tokens import TokenTable
from idlefleet.web.runner import WebConfig, serving_web
from streams.identity import write_private
from streams.producer import Publisher

#: The token file's name in the demo's output directory.
TOKENS_FILE = "console-tokens.txt"


@dataclass(frozen=True)
class DemoConsole:
    """Where the console listens and the file holding its tokens (first line: the
    operator's, role admin; then one `owner:VEHICLE_ID` per car)."""

    url: str
    tokens_path: Path


def write_console_tokens(out_dir: Path, vehicle_ids: Sequence[str]) -> Path:
    """Fresh tokens for this run in `out_dir/TOKENS_FILE` (mode 0600)."""
    lines = [f"{secrets.token_urlsafe(32)} admin demo-operator"]
    lines += [f"{secrets.token_urlsafe(32)} owner:{vehicle_id}" for vehicle_id in vehicle_ids]
    path = out_dir / TOKENS_FILE
    write_private(path, ("\n".join(lines) + "\n").encode())
    return path


@contextmanager
def demo_console(
    config: WebConfig | None,
    service: PlannerService,
    publisher: Publisher,
    clock: SteppedClock,
    out_dir: Path,
    vehicle_ids: Sequence[str],
) -> Iterator[DemoConsole | None]:
    """Serve the console over `service` while the block runs (None: `config` is None).
    Owners' changes and jobs submitted on its pages are published with `publisher`."""
    if config is None:
        yield None
        return
    tokens_path = write_console_tokens(out_dir, vehicle_ids)
    backend = ServiceBackend(service, publisher, clock).start()
    try:
        with serving_web(
            config,
            backend,
            TokenTable.load(tokens_path),
            health_source(service.health_notes, lambda: service.dead_letters, service=service),
        ) as port:
            assert port is not None
            console = DemoConsole(config.url(port), tokens_path)
            print(
                f"web console on {console.url}: sign in with a token from {tokens_path} "
                "(first line: the operator; then one per car's owner)",
                file=sys.stderr,
                flush=True,
            )
            yield console
    finally:
        backend.close()
