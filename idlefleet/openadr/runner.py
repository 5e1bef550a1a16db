"""Running the VEN beside the service: its own asyncio loop on a thread of its own."""

from __future__ import annotations

import argparse
import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from idlefleet.openadr.accepted import read_caps_in_force
from idlefleet.openadr.mapping import DrMapping
from idlefleet.openadr.ratelimit import EventRate
from idlefleet.openadr.trust import Vtn
from idlefleet.openadr.ven import FleetVen
from idlefleet.service.dr import service_decider
from idlefleet.service.planner import PlannerService
from streams.clients import KafkaSettings
from streams.producer import Publisher

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("OpenADR 2.0b VEN")
    group.add_argument(
        "--openadr-vtn-url", help="the utility's VTN, e.g. https://…/OpenADR2/Simple/2.0b"
    )
    group.add_argument("--ven-name", default="idlefleet", help="this VEN's name at the VTN")
    group.add_argument("--openadr-mapping", type=Path, help="JSON: event targets to sites/regions")
    group.add_argument(
        "--openadr-cert", type=Path, help="PEM certificate for mutual TLS and signing"
    )
    group.add_argument("--openadr-key", type=Path, help="PEM private key of --openadr-cert")
    group.add_argument(
        "--openadr-vtn-ca", type=Path, help="PEM CA file the VTN's TLS certificate must chain to"
    )
    group.add_argument(
        "--openadr-vtn-fingerprint",
        help="OpenADR fingerprint (AA:BB:…) of the certificate the VTN signs messages with",
    )
    group.add_argument(
        "--openadr-insecure-lab",
        action="store_true",
        help="LAB ONLY: accept an http:// VTN, or one verified by neither CA nor fingerprint",
    )


def vtn_of(args: argparse.Namespace) -> Vtn | None:
    """The VTN the flags name, checked (VtnTrustError); None without --openadr-vtn-url."""
    if not args.openadr_vtn_url:
        return None
    return Vtn(
        args.openadr_vtn_url,
        ca_file=args.openadr_vtn_ca,
        fingerprint=args.openadr_vtn_fingerprint,
        cert=args.openadr_cert,
        key=args.openadr_key,
        insecure_lab=args.openadr_insecure_lab,
    )


@contextmanager
def running_ven(
    vtn: Vtn | None,
    args: argparse.Namespace,
    service: PlannerService,
    kafka: KafkaSettings,
    publisher: Publisher,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[FleetVen | None]:
    """The VEN registered (or retrying) while the block runs, with the caps it accepted
    before (read from the DR topic first); None without a VTN. It decides on the service's
    `clock` (default: the wall clock, UTC)."""
    if vtn is None:
        yield None
        return
    mapping = (
        DrMapping.from_file(args.openadr_mapping)
        if args.openadr_mapping
        else DrMapping.for_sites(service.sites)
    )
    trust = service.trust
    accepted = read_caps_in_force(kafka, None if trust is None else trust.rules())
    log.info("OpenADR: %d accepted events with caps in force", len(accepted))
    settings = service.settings
    ven = FleetVen(
        vtn,
        args.ven_name,
        service.sites,
        service_decider(service, publisher, clock or (lambda: datetime.now(UTC))),
        mapping,
        rate=EventRate(settings.dr_events_per_minute, settings.dr_event_burst),
        accepted=accepted,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="openadr-ven", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(ven.run(), loop)
    try:
        yield ven
    finally:
        asyncio.run_coroutine_threadsafe(ven.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
