"""The fleet's VEN: registers with a utility's VTN, answers events from the optimizer.

For each new or modified event the VEN turns its signals into grid-import caps
(`mapping.event_caps`), asks the `DrDecider` to plan with them, and answers `optIn` when the
plan keeps every owner's reserve and departure target (the decider then applies the caps,
so dispatched work changes) or `optOut` with the reason logged. Cancellations withdraw the
caps. The VEN reports each site's load and its available flexibility to the VTN.
Registration is retried with backoff while the VTN is unreachable or fails verification
(`trust.Vtn`).

The caps accepted before a restart come in with `accepted` (`accepted.read_caps_in_force`):
an event delivered again with the same caps is answered `optIn` with nothing published, and
its cancellation withdraws them. Events are decided at a bounded rate (`ratelimit.EventRate`);
beyond it an event is answered `optOut` and logged. Cancellations pass always: they only
withdraw caps accepted within the rate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import aiohttp
from openleadr import OpenADRClient, enums, objects

from idlefleet.openadr.mapping import DrMapping, DrMappingError, event_caps
from idlefleet.openadr.ratelimit import EventRate
from idlefleet.openadr.trust import Vtn
from idlefleet.service.dr import Decision, DrDecider
from idlefleet.sites import SiteConfig
from streams.messages import DemandResponseEvent

log = logging.getLogger(__name__)

OPT_IN = "optIn"
OPT_OUT = "optOut"
#: Flexibility has no standard OpenADR report; it is reported as telemetry usage of a
#: resource named `<site>.flexibility` (the power the site can shed now [kW]).
FLEXIBILITY_SUFFIX = ".flexibility"
#: A VTN may ask for readings as often as every second or as rarely as every hour.
REPORT_SAMPLING = objects.SamplingRate(
    min_period=timedelta(seconds=1), max_period=timedelta(hours=1), on_change=False
)


class FleetVen:
    """An openleadr client wired to the fleet's planner."""

    def __init__(
        self,
        vtn: Vtn,
        ven_name: str,
        sites: Sequence[SiteConfig],
        decider: DrDecider,
        mapping: DrMapping | None = None,
        *,
        rate: EventRate,
        accepted: Mapping[str, Sequence[DemandResponseEvent]] | None = None,
        retry_max_s: float = 60.0,
    ) -> None:
        self.vtn = vtn
        self.ven_name = ven_name
        self.sites = list(sites)
        self.decider = decider
        self.mapping = mapping or DrMapping.for_sites(self.sites)
        self.rate = rate
        self.retry_max_s = retry_max_s
        self.decisions: dict[str, Decision] = {}
        self._caps = {event_id: list(caps) for event_id, caps in (accepted or {}).items()}
        self.client: OpenADRClient | None = None
        self.registered = asyncio.Event()
        vtn.warn_if_waived()

    def _new_client(self) -> OpenADRClient:
        """An openleadr client that verifies the VTN as `self.vtn` says (in a running loop)."""
        client = OpenADRClient(
            ven_name=self.ven_name,
            vtn_url=self.vtn.url,
            cert=None if self.vtn.cert is None else str(self.vtn.cert),
            key=None if self.vtn.key is None else str(self.vtn.key),
            vtn_fingerprint=self.vtn.fingerprint,
        )
        if self.vtn.ssl_context is not None:
            # openleadr builds a verifying context only beside a client certificate.
            client.client_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.vtn.ssl_context),
                headers={"content-type": "application/xml"},
                timeout=aiohttp.ClientTimeout(sock_connect=5, sock_read=10),
            )
        client.add_handler("on_event", self.on_event)
        client.add_handler("on_update_event", self.on_update_event)
        for site in self.sites:
            client.add_report(
                callback=_bind(self.decider.site_load_kw, site.site_id),
                resource_id=site.site_id,
                measurement="power_real",
                unit="W",
                scale="k",
                report_name=enums.REPORT_NAME.TELEMETRY_USAGE,
                sampling_rate=REPORT_SAMPLING,
            )
            client.add_report(
                callback=_bind(self.decider.site_flexibility_kw, site.site_id),
                resource_id=f"{site.site_id}{FLEXIBILITY_SUFFIX}",
                measurement="power_real",
                unit="W",
                scale="k",
                report_name=enums.REPORT_NAME.TELEMETRY_USAGE,
                sampling_rate=REPORT_SAMPLING,
            )
        return client

    async def run(self) -> None:
        """Register (retrying while the VTN is unreachable), then poll until stopped."""
        delay_s = 1.0
        while True:
            client = self._new_client()
            try:
                await client.run()
            except Exception as exc:  # openleadr surfaces connection errors as anything
                log.warning("VTN unreachable (%s: %s)", type(exc).__name__, exc)
            except asyncio.CancelledError:
                await client.stop()
                raise
            if client.registration_id:
                self.client = client
                self.registered.set()
                log.info("registered with the VTN as %s", client.ven_id)
                return
            await client.stop()
            log.warning(
                "registration with %s failed (unreachable, or not verified: see above); "
                "retrying in %.0f s",
                self.vtn.url,
                delay_s,
            )
            await asyncio.sleep(delay_s)
            delay_s = min(self.retry_max_s, delay_s * 2)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.stop()

    async def on_event(self, event: Mapping[str, Any]) -> str:
        """A new event: plan with its caps and answer."""
        return await asyncio.to_thread(self._answer, event)

    async def on_update_event(self, event: Mapping[str, Any]) -> str:
        """A modified or cancelled event: withdraw its old caps, then answer anew."""
        return await asyncio.to_thread(self._answer, event)

    def _answer(self, event: Mapping[str, Any]) -> str:
        descriptor = event["event_descriptor"]
        event_id = str(descriptor["event_id"])
        if descriptor.get("event_status") == enums.EVENT_STATUS.CANCELLED:
            withdrawn = self._withdraw(event_id)
            log.info("event %s cancelled; %d caps withdrawn", event_id, withdrawn)
            return OPT_IN
        decision = self._decide(event_id, event)
        self.decisions[event_id] = decision
        answer = OPT_IN if decision.honour else OPT_OUT
        log.log(
            logging.INFO if decision.honour else logging.WARNING,
            "event %s (modification %s): %s, %s (planned in %.2f s)",
            event_id,
            descriptor.get("modification_number"),
            answer,
            decision.reason,
            decision.plan_s,
        )
        return answer

    def _decide(self, event_id: str, event: Mapping[str, Any]) -> Decision:
        """Decide on a new or modified event; whatever it had in force before is withdrawn
        unless its caps are unchanged (an event delivered again after a restart)."""
        started = time.perf_counter()
        try:
            caps = event_caps(event, self.mapping, self.sites)
        except DrMappingError as exc:
            self._withdraw(event_id)
            return Decision(False, str(exc), time.perf_counter() - started)
        if caps and caps == self._caps.get(event_id):
            return Decision(True, "its caps are in force already", 0.0)
        self._withdraw(event_id)
        if not self.rate.take():
            return Decision(
                False,
                f"refused unplanned: more events than the limit of {self.rate.burst} at once "
                f"and {self.rate.per_minute:g} a minute",
                0.0,
            )
        decision = self.decider.decide(caps) if caps else Decision(True, "no caps", 0.0)
        if decision.honour and caps:
            self.decider.apply(caps)
            self._caps[event_id] = caps
        return decision

    def _withdraw(self, event_id: str) -> int:
        """Lift the caps the event has in force; how many there were."""
        previous = self._caps.pop(event_id, [])
        if previous:
            self.decider.withdraw(previous)
        return len(previous)


def _bind(function: Any, site_id: str) -> Any:
    """A report callback for one site (openleadr calls it with no arguments)."""

    def value() -> float:
        return float(function(site_id))

    return value
