"""Running the VEN beside the service: its own asyncio loop on a thread of its own."""

from __future__ import annotations

import argparse
import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from idlefleet.openadr.mapping import DrMapping
from idlefleet.openadr.ven import FleetVen
from idlefleet.service.dr import service_decider
from idlefleet.service.planner import PlannerService
from streams.producer import Publisher

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("OpenADR 2.0b VEN")
    group.add_argument(
        "--openadr-vtn-url", help="the utility's VTN, e.g. https://…/OpenADR2/Simple/2.0b"
    )
    group.add_argument("--ven-name", default="idlefleet", help="this VEN's name at the VTN")
    group.add_argument("--openadr-mapping", type=Path, help="JSON: event targets to sites/regions")
    group.add_argument("--openadr-cert", help="PEM certificate for signing (with --openadr-key)")
    group.add_argument("--openadr-key", help="PEM private key")
    group.add_argument("--openadr-vtn-ca", help="CA file that signs the VTN's certificate")


@contextmanager
def running_ven(
    args: argparse.Namespace, service: PlannerService, publisher: Publisher
) -> Iterator[FleetVen | None]:
    """The VEN registered (or retrying) while the block runs; None without --openadr-vtn-url."""
    if not args.openadr_vtn_url:
        yield None
        return
    mapping = (
        DrMapping.from_file(args.openadr_mapping)
        if args.openadr_mapping
        else DrMapping.for_sites(service.sites)
    )
    ven = FleetVen(
        args.openadr_vtn_url,
        args.ven_name,
        service.sites,
        service_decider(service, publisher, lambda: datetime.now(UTC)),
        mapping,
        cert=args.openadr_cert,
        key=args.openadr_key,
        vtn_ca_file=args.openadr_vtn_ca,
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
