"""`idlefleet serve`: the planner service on the wall clock (or a scaled one).

It plans on the grid signals published to the grid-signals topic: live feeds it polls itself
(WattTime, Electricity Maps, when their credentials are set: `idlefleet.gridfeeds`), or
`idlefleet forecast publish`. Where none covers its horizon it plans on a labelled fallback
built from the shipped 2020 data (`forecasting.fallback`), says so in its health and log,
and takes a live signal again at the next plan after one arrives.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idlefleet.api.runner import (
    ApiConfig,
    ApiConfigError,
    api_config,
    lab_api_config,
    serving_api,
)
from idlefleet.api.runner import add_arguments as add_api_arguments
from idlefleet.client.connection import lab_token_path
from idlefleet.commands import EXIT_BAD_INPUT
from idlefleet.credentials import CredentialsError, credentials_from_args
from idlefleet.credentials import add_arguments as add_identity_arguments
from idlefleet.lifecycle import bootstrap_or_embedded, stop_on_signals
from idlefleet.ocpp.runner import OcppConfigError, ocpp_config, ocpp_credentials, running_ocpp
from idlefleet.ocpp.runner import add_arguments as add_ocpp_arguments
from idlefleet.ocpp.runner import describe as describe_ocpp
from idlefleet.openadr.runner import add_arguments as add_ven_arguments
from idlefleet.openadr.runner import running_ven, vtn_of
from idlefleet.openadr.trust import VtnTrustError
from idlefleet.settings import StoreSettings
from idlefleet.sim.clock import ScaledClock
from idlefleet.store.embedded import store_or_embedded
from idlefleet.store.lab import lab_store_path, write_lab_store
from idlefleet.web.runner import WebConfigError, serving_web, web_config
from idlefleet.web.runner import add_arguments as add_web_arguments

if TYPE_CHECKING:
    from idlefleet.forecast_messages import IntensityFallback
    from idlefleet.gridfeeds.poller import FeedSource
    from idlefleet.service.planner import PlanRecord, TickReport
    from idlefleet.sites import SiteConfig

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
    parser = commands.add_parser("serve", help="run the planner service")
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS"),
        help="Kafka HOST:PORT (or IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS); default: embedded broker",
    )
    parser.add_argument("--sites", help="JSON list of sites (default: the shipped example)")
    parser.add_argument("--topic-prefix", default="idlefleet")
    parser.add_argument("--slot-minutes", type=int, default=15)
    parser.add_argument(
        "--clock-speed",
        type=float,
        default=1.0,
        metavar="X",
        help="the service's clock runs X times the wall clock from now (default 1)",
    )
    intensity = parser.add_argument_group(
        "grid intensity",
        "live feeds are polled when IDLEFLEET_WATTTIME_USERNAME and _PASSWORD, or "
        "IDLEFLEET_ELECTRICITYMAPS_API_KEY, are set (README, serve)",
    )
    intensity.add_argument(
        "--no-intensity-fallback",
        action="store_true",
        help="plan only on published signals: no plan where none covers the horizon",
    )
    intensity.add_argument(
        "--shared-data",
        help="build the fallback from the full 2020 files in this directory "
        "(ger_ci.csv, gb_ci.csv, fr_ci.csv); default: the shipped excerpt",
    )
    add_identity_arguments(parser)
    add_api_arguments(parser)
    add_ven_arguments(parser)
    add_ocpp_arguments(parser)
    add_web_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from executor.objects import ObjectStore
    from idlefleet.forecast_messages import IntensityFallback
    from idlefleet.gridfeeds.runner import feed_sources, polling_feeds
    from idlefleet.queries.health import health_source
    from idlefleet.queries.service_backend import ServiceBackend
    from idlefleet.service.planner import PlannerService
    from idlefleet.settings import ElectricityMapsSettings, PlannerSettings, WattTimeSettings
    from idlefleet.sites import SitesFileError, load_sites
    from streams.clients import KafkaSettings, ensure_topics
    from streams.messages import GridSignal
    from streams.topics import Stream

    speed = args.clock_speed
    if not (math.isfinite(speed) and speed > 0):
        print(
            f"idlefleet serve: --clock-speed must be a finite number above 0, got {speed:g}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        sites = load_sites(Path(args.sites)) if args.sites else default_sites()
    except SitesFileError as exc:
        print(f"idlefleet serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    data_dir = Path(args.shared_data) if args.shared_data else None
    if data_dir is not None and not data_dir.is_dir():
        print(f"idlefleet serve: --shared-data {data_dir} is not a directory", file=sys.stderr)
        return EXIT_BAD_INPUT
    lab = not args.bootstrap_servers
    try:
        settings = PlannerSettings(slot_minutes=args.slot_minutes)
        store_settings = StoreSettings()
        sources = feed_sources(
            [site.region for site in sites], WattTimeSettings(), ElectricityMapsSettings()
        )
    except (ValidationError, ValueError) as exc:
        print(f"idlefleet serve: settings: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        # A lab always serves the API (on loopback, with a lab token); elsewhere: --grpc-port.
        api = lab_api_config(args, lab_token_path()) if lab else api_config(args)
        vtn = vtn_of(args)  # None without --openadr-vtn-url
        ocpp = ocpp_config(args, sites)  # None without --ocpp-port
        web = web_config(args, lab=lab)  # a lab's by default; elsewhere with --web-port
        if web is not None and api is None:
            raise WebConfigError("--web-port needs --grpc-port and --tokens: the same tokens")
    except (ApiConfigError, VtnTrustError, OcppConfigError, WebConfigError) as exc:
        print(f"idlefleet serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if ocpp is not None and speed != 1:
        print(
            "idlefleet serve: --ocpp-port needs --clock-speed 1: chargers run on the wall clock",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        credentials = credentials_from_args(
            args, ["planner"], "service", lab=not args.bootstrap_servers
        )
        ocpp_identity = None if ocpp is None else ocpp_credentials(args, lab=lab)
    except CredentialsError as exc:
        print(f"idlefleet serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    wall_s = time.time()
    clock = ScaledClock(datetime.fromtimestamp(wall_s, UTC), wall_s, speed)
    fallback = None if args.no_intensity_fallback else IntensityFallback(data_dir)
    with (
        stop_on_signals() as stop,
        bootstrap_or_embedded(args.bootstrap_servers) as bootstrap,
        job_store(store_settings, lab) as store,
    ):
        kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=args.topic_prefix)
        ensure_topics(kafka)
        trust = credentials.trust(kafka)
        service = PlannerService(
            kafka,
            settings,
            sites,
            trust=trust,
            store=None if store is None else ObjectStore(store.store_config()),
            clock=clock,
            fallback=fallback,
        ).start()
        [identity] = credentials.identities
        print(
            f"serving on {bootstrap} (topics {args.topic_prefix}.*) as {identity.principal} "
            f"{identity.key_id}; fleet authority {credentials.authority_public_key.hex()}",
            file=sys.stderr,
        )
        print(describe_clock(clock), file=sys.stderr)
        print(describe_intensity(sources, fallback, data_dir), file=sys.stderr)
        print(describe_store(store, store_settings), file=sys.stderr)
        publisher = trust.publisher()
        feed_publisher = trust.publisher()
        ocpp_trust = None if ocpp_identity is None else ocpp_identity.trust(kafka)

        def publish_signal(signal: GridSignal) -> None:
            feed_publisher.publish(Stream.GRID_SIGNALS, signal)
            feed_publisher.flush()

        # One backend follows the service for every adapter that reads through it.
        backend = ServiceBackend(service, publisher, clock).start()
        try:
            with (
                polling_feeds(
                    sources, publish_signal, settings.slot_minutes, settings.horizon_hours, clock
                ) as poller,
                serving_api(
                    api,
                    service,
                    kafka,
                    clock,
                    publisher=publisher,
                    authority=credentials.authority,
                    health_notes=lambda: [*service.health_notes(), *poller.notes()],
                    backend=backend,
                ) as grpc_port,
                running_ocpp(ocpp, service, kafka, ocpp_trust) as chargers,
                serving_web(
                    web,
                    backend,
                    api.tokens if api is not None else None,
                    health_source(
                        lambda: [*service.health_notes(), *poller.notes()],
                        lambda: service.dead_letters,
                        service=service,
                        chargers=None if chargers is None else chargers.connections,
                    ),
                    api_target=_api_target(api, grpc_port),
                    limits=api.settings if api is not None else None,
                ) as web_port,
                running_ven(vtn, args, service, kafka, publisher, clock) as ven,
            ):
                if grpc_port is not None:
                    print(f"gRPC API on port {grpc_port}", file=sys.stderr)
                    if lab:
                        print(
                            f"lab: clients use IDLEFLEET_GRPC_TARGET=127.0.0.1:{grpc_port} and the "
                            f"token in {lab_token_path()}",
                            file=sys.stderr,
                        )
                if web is not None and web_port is not None:
                    print(f"web console on {web.url(web_port)}", file=sys.stderr, flush=True)
                if ven is not None:
                    print(f"OpenADR VEN for {args.openadr_vtn_url}", file=sys.stderr)
                if ocpp is not None and chargers is not None:
                    print(describe_ocpp(ocpp, chargers.port), file=sys.stderr, flush=True)
                tick_every_slot(service.tick, settings.slot_minutes, stop, clock, report_tick)
        finally:
            backend.close()
            service.stop()
            publisher.close()
            feed_publisher.close()
    return 0


@contextmanager
def job_store(settings: StoreSettings, lab: bool) -> Iterator[StoreSettings | None]:
    """The store job data goes to: the configured one; in a lab without one, an embedded store
    for the service's lifetime, left for this machine's clients (`idlefleet.store.lab`);
    elsewhere none (jobs with `s3://` data then fail with the reason)."""
    if settings.url is not None or not lab:
        yield None if settings.url is None else settings
        return
    with store_or_embedded(settings) as embedded:
        write_lab_store(embedded)
        yield embedded


def describe_store(store: StoreSettings | None, configured: StoreSettings) -> str:
    """The line `serve` prints about where job data goes."""
    if store is None:
        return "job data: no store (set IDLEFLEET_STORE_URL and IDLEFLEET_STORE_ENDPOINT)"
    where = store.store_config().where
    if configured.url is None:
        return f"job data: an embedded store, {store.url} at {where} (left in {lab_store_path()})"
    return f"job data: {store.url} at {where}"


def describe_clock(clock: ScaledClock) -> str:
    """The line `serve` prints about its clock."""
    start = clock.origin.isoformat(timespec="seconds")
    if clock.scale == 1:
        return f"clock: the wall clock (UTC), from {start}"
    return f"clock: {clock.scale:g}x the wall clock, from {start}"


def describe_intensity(
    sources: list[FeedSource], fallback: IntensityFallback | None, data_dir: Path | None
) -> str:
    """The line `serve` prints about where its grid intensity comes from."""
    feeds = sorted({f"{s.client.name} ({s.region}: {s.feed_region})" for s in sources})
    live = (
        f"live feeds {', '.join(feeds)}"
        if feeds
        else "no live feed (set IDLEFLEET_WATTTIME_USERNAME and _PASSWORD, or "
        "IDLEFLEET_ELECTRICITYMAPS_API_KEY)"
    )
    if fallback is None:
        return f"grid intensity: {live}, and signals on the grid-signals topic; no fallback"
    data = "the shipped 2020 excerpt" if data_dir is None else f"the 2020 files in {data_dir}"
    return (
        f"grid intensity: {live}, and signals on the grid-signals topic; where none covers "
        f"the horizon, a fallback from {data} (same season, weekday and hour)"
    )


def report_tick(report: TickReport) -> None:
    """One line on stderr per plan made."""
    record = report.replanned
    if record is not None:
        print(describe_plan(record), file=sys.stderr, flush=True)


def describe_plan(record: PlanRecord) -> str:
    fallback = (
        f"; on FALLBACK intensity for {', '.join(record.on_fallback)}" if record.on_fallback else ""
    )
    return (
        f"plan at {record.planned_at.isoformat(timespec='minutes')} "
        f"({','.join(record.reasons)}): {record.strategy} {record.status}, "
        f"{record.vehicles} cars, {record.open_executions} open executions{fallback}"
    )


def tick_every_slot(
    tick: Callable[[datetime], TickReport],
    slot_minutes: int,
    stop: threading.Event,
    clock: ScaledClock | None = None,
    on_tick: Callable[[TickReport], object] | None = None,
) -> None:
    """Call `tick` at every slot boundary of `clock` (default: the wall clock) until `stop`
    is set. Boundaries are counted from UTC midnight; ones the ticks fell behind by more than
    a slot are skipped (logged), never dispatched late."""
    if clock is None:
        wall_s = time.time()
        clock = ScaledClock(datetime.fromtimestamp(wall_s, UTC), wall_s, 1.0)
    slot = timedelta(minutes=slot_minutes)
    now = clock()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    boundary = midnight + ((now - midnight) // slot) * slot
    while not stop.is_set():
        report = tick(boundary)
        if on_tick is not None:
            on_tick(report)
        boundary += slot
        behind = (clock() - boundary) // slot
        if behind >= 1:
            log.warning("ticks fell %d slot(s) behind the clock: skipped to the current", behind)
            boundary += behind * slot
        stop.wait(max(0.0, clock.wall_s(boundary) - time.time()))


def default_sites() -> list[SiteConfig]:
    """The example sites shipped in idlefleet/data/sites.json."""
    from idlefleet.sites import load_sites

    with resources.as_file(resources.files("idlefleet") / "data" / "sites.json") as path:
        return load_sites(path)


def _api_target(api: ApiConfig | None, port: int | None) -> str | None:
    """HOST:PORT where clients reach the API serving on `port` (None: no API)."""
    if api is None or port is None:
        return None
    return f"[{api.host}]:{port}" if ":" in api.host else f"{api.host}:{port}"
