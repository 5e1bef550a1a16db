"""The OCPP central system's options of `idlefleet serve`, and running it beside the service.

`--ocpp-port P --ocpp-stations FILE [--ocpp-host H] [--ocpp-tls-cert PEM --ocpp-tls-key PEM]
[--ocpp-identity FILE]`; the rest comes from `OcppSettings` (IDLEFLEET_OCPP_* variables).
Options are checked and files read before anything starts; the `ocpp` and `websockets`
libraries (the `chargers` extra) are imported only when OCPP is on. The central system runs
on an asyncio loop of its own, on a thread of its own; its adapter (`adapter.OcppAdapter`)
on another.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from idlefleet.credentials import Credentials, credentials_from_args, state_dir
from idlefleet.queries.health import ChargerConnections
from idlefleet.settings import OcppSettings

if TYPE_CHECKING:
    from ssl import SSLContext

    from idlefleet.ocpp.adapter import OcppAdapter, PlannerView
    from idlefleet.ocpp.central import CentralConfig, CentralSystem
    from idlefleet.ocpp.station import StationConfig
    from idlefleet.sites import SiteConfig
    from streams.clients import KafkaSettings
    from streams.trust import Trust

log = logging.getLogger(__name__)

#: The identity the adapter signs measured states with (role adapter).
OCPP_PRINCIPAL = "ocpp"


class OcppConfigError(ValueError):
    """The OCPP options do not fit together, or a file cannot be used."""


@dataclass(frozen=True)
class OcppConfig:
    """Where the central system listens, the stations it accepts, and its settings."""

    host: str
    port: int
    central: CentralConfig
    settings: OcppSettings
    stations_file: Path

    @property
    def tls(self) -> bool:
        return self.central.ssl is not None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "OCPP central system (chargers)",
        "stations connect to ws[s]://HOST:PORT/ocpp/<station id> (OCPP 2.0.1 or 1.6J); "
        "more settings in IDLEFLEET_OCPP_* variables (docs/ocpp.md)",
    )
    group.add_argument(
        "--ocpp-port",
        type=int,
        help="accept charging stations on this port (default IDLEFLEET_OCPP_PORT, or 0: off)",
    )
    group.add_argument("--ocpp-host", help="address to bind (default IDLEFLEET_OCPP_HOST, 0.0.0.0)")
    group.add_argument(
        "--ocpp-stations",
        type=Path,
        help="stations file: 'STATION_ID SITE_ID PASSWORD [KEY=VALUE ...]' per line",
    )
    group.add_argument(
        "--ocpp-tls-cert", type=Path, help="PEM certificate chain: wss (security profile 2)"
    )
    group.add_argument("--ocpp-tls-key", type=Path, help="PEM private key of --ocpp-tls-cert")
    group.add_argument(
        "--ocpp-identity",
        type=Path,
        help="the OCPP adapter's identity file (default <identity dir>/ocpp.key)",
    )


def ocpp_config(args: argparse.Namespace, sites: Sequence[SiteConfig]) -> OcppConfig | None:
    """The central system's configuration, or None when OCPP is off (port 0).
    OcppConfigError for options that do not fit or files that cannot be used."""
    try:
        overrides = {"port": args.ocpp_port, "host": args.ocpp_host}
        settings = OcppSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise OcppConfigError(f"OCPP settings: {exc}") from exc
    if settings.port == 0:
        given = [
            flag
            for flag, value in (
                ("--ocpp-stations", args.ocpp_stations),
                ("--ocpp-tls-cert", args.ocpp_tls_cert),
                ("--ocpp-tls-key", args.ocpp_tls_key),
                ("--ocpp-identity", args.ocpp_identity),
            )
            if value is not None
        ]
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise OcppConfigError(f"{' and '.join(given)} {verb} --ocpp-port")
        return None
    if args.ocpp_stations is None:
        raise OcppConfigError("--ocpp-port needs --ocpp-stations FILE")
    if (args.ocpp_tls_cert is None) != (args.ocpp_tls_key is None):
        raise OcppConfigError("--ocpp-tls-cert and --ocpp-tls-key go together")
    try:
        from idlefleet.ocpp.central import tls_context
        from idlefleet.ocpp.stations_file import StationsFileError, load_stations
    except ImportError as exc:
        raise OcppConfigError(
            f"--ocpp-port needs the chargers extra (pip install 'idlefleet[chargers]'): {exc}"
        ) from exc
    try:
        stations = load_stations(args.ocpp_stations, [site.site_id for site in sites])
    except StationsFileError as exc:
        raise OcppConfigError(str(exc)) from exc
    ssl = None
    if args.ocpp_tls_cert is not None:
        try:
            ssl = tls_context(args.ocpp_tls_cert, args.ocpp_tls_key)
        except OSError as exc:
            raise OcppConfigError(f"--ocpp-tls-cert/--ocpp-tls-key: {exc}") from exc
    central = central_config(stations, settings, ssl)
    return OcppConfig(settings.host, settings.port, central, settings, args.ocpp_stations)


def central_config(
    stations: Mapping[str, StationConfig], settings: OcppSettings, ssl: SSLContext | None = None
) -> CentralConfig:
    """The central system's configuration for `stations` under `settings`."""
    from idlefleet.ocpp.central import CentralConfig
    from idlefleet.ocpp.compliance import ComplianceRule

    rule = ComplianceRule(
        tolerance_kw=settings.tolerance_kw,
        tolerance_frac=settings.tolerance_frac,
        samples=settings.violation_samples,
    )
    return CentralConfig(
        stations,
        rule=rule,
        ssl=ssl,
        heartbeat_s=settings.heartbeat_s,
        response_timeout_s=settings.response_timeout_s,
    )


def identity_path(args: argparse.Namespace) -> Path:
    """The adapter's identity file: --ocpp-identity, else `ocpp.key` beside serve's own."""
    if args.ocpp_identity is not None:
        return Path(args.ocpp_identity)
    directory = args.identity_dir or (args.identity.parent if args.identity else state_dir())
    return Path(directory) / f"{OCPP_PRINCIPAL}.key"


def ocpp_credentials(args: argparse.Namespace, *, lab: bool) -> Credentials:
    """The adapter's identity (role adapter, made on first start) and whom it trusts, as
    serve's own (`--authority-*`; a lab enrolls it). CredentialsError when they cannot be."""
    own = argparse.Namespace(
        **{**vars(args), "identity": identity_path(args), "identity_dir": None}
    )
    return credentials_from_args(own, [OCPP_PRINCIPAL], "adapter", lab=lab)


def describe(config: OcppConfig, port: int) -> str:
    """The line `serve` prints about the central system."""
    scheme = "wss" if config.tls else "ws"
    stations = config.central.stations
    line = (
        f"OCPP central system on {scheme}://{config.host}:{port}/ocpp/<station id> for "
        f"{len(stations)} station(s) of {config.stations_file}"
    )
    if not config.tls:
        line += (
            "; no TLS: station passwords cross the network in clear (security profile 1), "
            "use on a closed network only"
        )
    return line


@dataclass(frozen=True)
class RunningOcpp:
    """The central system serving, its adapter, the loop it runs on and its bound port."""

    central: CentralSystem
    adapter: OcppAdapter
    loop: asyncio.AbstractEventLoop
    port: int
    #: Stations the stations file configures [count].
    stations_configured: int

    def connections(self, timeout_s: float = 2.0) -> ChargerConnections:
        """The stations connected now, read on the central system's loop."""
        views = asyncio.run_coroutine_threadsafe(self.central.view(), self.loop).result(timeout_s)
        return ChargerConnections(sum(view.connected for view in views), self.stations_configured)


@contextmanager
def running_ocpp(
    config: OcppConfig | None,
    service: PlannerView,
    kafka: KafkaSettings,
    trust: Trust | None,
) -> Iterator[RunningOcpp | None]:
    """The central system accepting stations while the block runs (None: OCPP off).

    `trust` (started) holds the adapter's identity (role adapter) and is stopped at the end;
    the adapter reads the fleet registry to its end before the first station is accepted.
    """
    if config is None:
        yield None
        return
    assert trust is not None, "the OCPP adapter signs with an identity of its own"
    from idlefleet.ocpp.adapter import OcppAdapter
    from idlefleet.ocpp.central import CentralSystem

    stations = config.central.stations
    adapter = OcppAdapter(
        kafka,
        trust,
        service,
        {station_id: station.site_id for station_id, station in stations.items()},
        poll_s=config.settings.poll_s,
    )
    central = CentralSystem(config.central, clock=service.clock, on_report=adapter.report)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="ocpp-central", daemon=True)
    thread.start()
    try:
        adapter.start(central, loop)
        port = asyncio.run_coroutine_threadsafe(
            central.start(config.host, config.port), loop
        ).result(timeout=30)
        try:
            yield RunningOcpp(central, adapter, loop, port, len(stations))
        finally:
            asyncio.run_coroutine_threadsafe(central.stop(), loop).result(timeout=30)
    finally:
        adapter.stop()  # after the central system: it bridges what was reported until then
        asyncio.run_coroutine_threadsafe(_wind_down(loop), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        trust.stop()


async def _wind_down(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what still runs on the loop (profiles sent when the stations went away), as
    `asyncio.run` does before it closes a loop."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()
