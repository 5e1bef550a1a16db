"""`idlefleet serve`: the planner service on the wall clock."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idlefleet.api.runner import ApiConfigError, api_config, serving_api
from idlefleet.api.runner import add_arguments as add_api_arguments
from idlefleet.commands import EXIT_BAD_INPUT
from idlefleet.credentials import CredentialsError, credentials_from_args
from idlefleet.credentials import add_arguments as add_identity_arguments
from idlefleet.lifecycle import bootstrap_or_embedded, stop_on_signals
from idlefleet.openadr.runner import add_arguments as add_ven_arguments
from idlefleet.openadr.runner import running_ven, vtn_of
from idlefleet.openadr.trust import VtnTrustError

if TYPE_CHECKING:
    from idlefleet.sites import SiteConfig


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
    add_identity_arguments(parser)
    add_api_arguments(parser)
    add_ven_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from idlefleet.service.planner import PlannerService
    from idlefleet.settings import PlannerSettings
    from idlefleet.sites import SitesFileError, load_sites
    from streams.clients import KafkaSettings, ensure_topics

    try:
        sites = load_sites(Path(args.sites)) if args.sites else default_sites()
    except SitesFileError as exc:
        print(f"idlefleet serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        api = api_config(args)  # None without --grpc-port
        vtn = vtn_of(args)  # None without --openadr-vtn-url
    except (ApiConfigError, VtnTrustError) as exc:
        print(f"idlefleet serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        credentials = credentials_from_args(
            args, ["planner"], "service", lab=not args.bootstrap_servers
        )
    except CredentialsError as exc:
        print(f"idlefleet serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    settings = PlannerSettings(slot_minutes=args.slot_minutes)
    with stop_on_signals() as stop, bootstrap_or_embedded(args.bootstrap_servers) as bootstrap:
        kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=args.topic_prefix)
        ensure_topics(kafka)
        trust = credentials.trust(kafka)
        service = PlannerService(kafka, settings, sites, trust=trust).start()
        [identity] = credentials.identities
        print(
            f"serving on {bootstrap} (topics {args.topic_prefix}.*) as {identity.principal} "
            f"{identity.key_id}; fleet authority {credentials.authority_public_key.hex()}",
            file=sys.stderr,
        )
        publisher = trust.publisher()
        try:
            with (
                serving_api(
                    api, service, kafka, publisher=publisher, authority=credentials.authority
                ) as grpc_port,
                running_ven(vtn, args, service, kafka, publisher) as ven,
            ):
                if grpc_port is not None:
                    print(f"gRPC API on port {grpc_port}", file=sys.stderr)
                if ven is not None:
                    print(f"OpenADR VEN for {args.openadr_vtn_url}", file=sys.stderr)
                tick_every_slot(service.tick, settings.slot_minutes, stop)
        finally:
            service.stop()
            publisher.close()
    return 0


def tick_every_slot(
    tick: Callable[[datetime], object], slot_minutes: int, stop: threading.Event
) -> None:
    """Call `tick` at every slot boundary of the wall clock until `stop` is set."""
    slot = timedelta(minutes=slot_minutes)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    boundary = midnight + ((datetime.now(UTC) - midnight) // slot) * slot
    while not stop.is_set():
        tick(boundary)
        boundary += slot
        stop.wait(max(0.0, (boundary - datetime.now(UTC)).total_seconds()))


def default_sites() -> list[SiteConfig]:
    """The example sites shipped in idlefleet/data/sites.json."""
    from idlefleet.sites import load_sites

    with resources.as_file(resources.files("idlefleet") / "data" / "sites.json") as path:
        return load_sites(path)
