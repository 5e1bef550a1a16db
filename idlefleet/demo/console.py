"""The demo's web console and gRPC API: the service's pages and calls over the simulated
clock, with tokens for an operator and for every car's owner written beside the demo's
output, and the run's object store left for this machine's clients (`idlefleet jobs submit`
works against the demo as against a lab's `serve`)."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from idlefleet.api.runner import ApiConfig, serving_api
from idlefleet.queries.health import health_source
from idlefleet.queries.service_backend import ServiceBackend
from idlefleet.service.planner import PlannerService
from idlefleet.settings import StoreSettings
from idlefleet.sim.clock import SteppedClock
from idlefleet.store.lab import write_lab_store
from idlefleet.tokens import TokenTable
from idlefleet.web.runner import WebConfig, serving_web
from streams.clients import KafkaSettings
from streams.identity import write_private
from streams.producer import Publisher

#: The token file's name in the demo's output directory.
TOKENS_FILE = "console-tokens.txt"


@dataclass(frozen=True)
class DemoConsole:
    """Where the console listens, the gRPC API's HOST:PORT and the file holding their tokens
    (first line: the operator's, role admin; then one `owner:VEHICLE_ID` per car)."""

    url: str
    api_target: str
    tokens_path: Path


def write_console_tokens(out_dir: Path, vehicle_ids: Sequence[str]) -> Path:
    """Fresh tokens for this run in `out_dir/TOKENS_FILE` (mode 0600), replacing an earlier
    run's: those no longer sign anyone in."""
    lines = [f"{secrets.token_urlsafe(32)} admin demo-operator"]
    lines += [f"{secrets.token_urlsafe(32)} owner:{vehicle_id}" for vehicle_id in vehicle_ids]
    path = out_dir / TOKENS_FILE
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    write_private(temporary, ("\n".join(lines) + "\n").encode())
    temporary.replace(path)
    return path


@contextmanager
def demo_console(
    config: WebConfig | None,
    service: PlannerService,
    kafka: KafkaSettings,
    publisher: Publisher,
    clock: SteppedClock,
    store: StoreSettings,
    out_dir: Path,
    vehicle_ids: Sequence[str],
) -> Iterator[DemoConsole | None]:
    """Serve the console and the gRPC API over `service` while the block runs (None:
    `config` is None). Owners' changes and jobs submitted through them are published with
    `publisher` (the service's); `store` is where their job data goes."""
    if config is None:
        yield None
        return
    tokens_path = write_console_tokens(out_dir, vehicle_ids)
    tokens = TokenTable.load(tokens_path)
    write_lab_store(store)
    # Owners and operators act between the demo's steps: later than the cars' reports.
    step = timedelta(minutes=service.settings.slot_minutes)
    backend = ServiceBackend(service, publisher, clock.within(step)).start()
    try:
        with (
            serving_api(
                ApiConfig("127.0.0.1", 0, tokens, None),
                service,
                kafka,
                clock,
                publisher=publisher,
                health_notes=service.health_notes,
                backend=backend,
            ) as grpc_port,
            serving_web(
                config,
                backend,
                tokens,
                health_source(service.health_notes, lambda: service.dead_letters, service=service),
                api_target=f"127.0.0.1:{grpc_port}",
            ) as port,
        ):
            assert port is not None and grpc_port is not None
            console = DemoConsole(config.url(port), f"127.0.0.1:{grpc_port}", tokens_path)
            print(
                f"web console on {console.url}: sign in with a token from {tokens_path} "
                "(first line: the operator; then one per car's owner); clients: "
                f"IDLEFLEET_GRPC_TARGET={console.api_target} --token-file {tokens_path}",
                file=sys.stderr,
                flush=True,
            )
            yield console
    finally:
        backend.close()
