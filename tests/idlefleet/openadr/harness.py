"""A real openleadr VTN started by a test (plain or TLS), a fleet scenario and a cap recorder."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from openleadr import OpenADRServer

from idlefleet.openadr.ratelimit import EventRate
from idlefleet.openadr.trust import Vtn
from idlefleet.openadr.ven import FleetVen
from idlefleet.service.dr import DrDecider
from idlefleet.sim.catalog import demo_sites
from optimizer import Scenario, format_timestamp, load_scenario
from streams.messages import DemandResponseEvent

SITES = demo_sites(1, 2)
SITE = SITES[0].site_id
VEN_ID = "ven-fleet"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def now_slot() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


def scenario_now() -> Scenario:
    """Two cars at the site for two hours, each owed 10 kWh from an 11 kW charger."""
    start = now_slot()
    cars = [
        {
            "id": f"car-{i}",
            "site": SITE,
            "arrival": format_timestamp(start),
            "departure": format_timestamp(start + timedelta(hours=2)),
            "battery_kwh": 60.0,
            "soc_kwh": 20.0,
            "target_kwh": 30.0,
            "charger_kw": 11.0,
            "charge_efficiency_frac": 1.0,
            "compute_kw": 0.3,
        }
        for i in range(2)
    ]
    return load_scenario(
        {
            "scenario_version": 1,
            "horizon": {"start": format_timestamp(start), "slot_minutes": 15, "slots": 16},
            "objective": {"carbon_price_per_tonne": 100.0},
            "regions": [{"id": "DE", "intensity_g_per_kwh": [300.0] * 16}],
            "sites": [{"id": SITE, "region": "DE", "grid_limit_kw": 30.0}],
            "vehicles": cars,
            "jobs": [],
        }
    )


class Recorder:
    """Publishes nowhere: remembers what the decider would publish to the DR topic."""

    def __init__(self) -> None:
        self.published: list[DemandResponseEvent] = []

    def __call__(self, cap: DemandResponseEvent) -> None:
        self.published.append(cap)


@dataclass(frozen=True)
class VtnTls:
    """PEM files of a TLS VTN; it signs its messages with the same certificate."""

    cert: Path
    key: Path
    client_ca: Path
    require_client_cert: bool = True


@dataclass
class LiveVtn:
    """A running VTN, the URL a VEN reaches it by and the reports it received."""

    server: OpenADRServer
    url: str
    reports: list[tuple[str, str, float]] = field(default_factory=list)

    def send(self, payload_kw: float, hours: float = 2.0) -> tuple[str, asyncio.Future[str]]:
        """A LOAD_DISPATCH event capping SITE from now; the future gets the VEN's answer."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def answered(ven_id: str, event_id: str, opt_type: str) -> None:
            if not future.done():
                future.set_result(opt_type)

        event_id = self.server.add_event(
            ven_id=VEN_ID,
            signal_name="LOAD_DISPATCH",
            signal_type="setpoint",
            intervals=[
                {
                    "dtstart": now_slot(),
                    "duration": timedelta(hours=hours),
                    "signal_payload": payload_kw,
                }
            ],
            target={"resource_id": SITE},
            callback=answered,
        )
        return event_id, future


@asynccontextmanager
async def running_vtn(tls: VtnTls | None = None) -> AsyncIterator[LiveVtn]:
    """A VTN on a free loopback port: http, or https (with mutual TLS unless relaxed)."""
    port = free_port()
    tls_options: dict[str, Any] = {}
    if tls is not None:
        tls_options = {
            "cert": str(tls.cert),
            "key": str(tls.key),
            "http_cert": str(tls.cert),
            "http_key": str(tls.key),
            "http_ca_file": str(tls.client_ca),
            "show_fingerprint": False,
        }
    server = OpenADRServer(
        vtn_id="vtn-test",
        http_port=port,
        http_host="127.0.0.1",
        requested_poll_freq=timedelta(seconds=0.5),
        **tls_options,
    )
    if tls is not None and not tls.require_client_cert:
        server.ssl_context.verify_mode = ssl.CERT_NONE
    vtn = LiveVtn(server, f"{'https' if tls else 'http'}://127.0.0.1:{port}/OpenADR2/Simple/2.0b")

    async def on_create_party_registration(info: dict[str, Any]) -> tuple[str, str]:
        return VEN_ID, "reg-1"

    async def on_register_report(
        ven_id: str,
        resource_id: str,
        measurement: str,
        unit: str,
        scale: str,
        min_sampling_interval: timedelta,
        max_sampling_interval: timedelta,
    ) -> tuple[Callable[..., Any], timedelta]:
        async def on_update_report(data: Sequence[tuple[datetime, float]]) -> None:
            vtn.reports.extend((resource_id, measurement, value) for _, value in data)

        return on_update_report, timedelta(seconds=1)

    server.add_handler("on_create_party_registration", on_create_party_registration)
    server.add_handler("on_register_report", on_register_report)
    await server.run_async()
    try:
        yield vtn
    finally:
        await server.stop()


def lab(url: str) -> Vtn:
    """The test VTN at `url`, unverified under the lab waiver."""
    return Vtn(url, insecure_lab=True)


@asynccontextmanager
async def registered_ven(
    vtn: Vtn,
    decider: DrDecider,
    *,
    rate: EventRate | None = None,
    accepted: dict[str, list[DemandResponseEvent]] | None = None,
    within_s: float = 30.0,
) -> AsyncIterator[FleetVen]:
    """A VEN registered with `vtn` (TimeoutError if not within `within_s`), stopped after the
    block; by default at a rate no test's few events reach."""
    rate = rate or EventRate(per_minute=600.0, burst=100)
    ven = FleetVen(vtn, "fleet", SITES, decider, rate=rate, accepted=accepted)
    try:
        await asyncio.wait_for(ven.run(), within_s)
        yield ven
    finally:
        await ven.stop()


async def wait_until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Return once `condition()` holds; AssertionError after `timeout_s`."""
    for _ in range(int(timeout_s / 0.25)):
        if condition():
            return
        await asyncio.sleep(0.25)
    raise AssertionError("condition not reached")
