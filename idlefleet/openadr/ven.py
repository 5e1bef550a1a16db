"""The fleet's VEN: registers with a utility's VTN, answers events from the optimizer.

For each new or modified event the VEN turns its signals into grid-import caps
(`mapping.event_caps`), asks the `DrDecider` to plan with them, and answers `optIn` when the
plan keeps every owner's reserve and departure target (the decider then applies the caps,
so dispatched work changes) or `optOut` with the reason logged. Cancellations withdraw the
caps. The VEN reports each site's load and its available flexibility to the VTN.
Registration is retried with backoff while the VTN is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from openleadr import OpenADRClient, enums, objects

from idlefleet.openadr.mapping import DrMapping, DrMappingError, event_caps
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
        vtn_url: str,
        ven_name: str,
        sites: Sequence[SiteConfig],
        decider: DrDecider,
        mapping: DrMapping | None = None,
        *,
        cert: str | None = None,
        key: str | None = None,
        vtn_ca_file: str | None = None,
        retry_max_s: float = 60.0,
    ) -> None:
        self.sites = list(sites)
        self.decider = decider
        self.mapping = mapping or DrMapping.for_sites(self.sites)
        self.retry_max_s = retry_max_s
        self.decisions: dict[str, Decision] = {}
        self._caps: dict[str, list[DemandResponseEvent]] = {}
        self._client_options: dict[str, Any] = {
            "ven_name": ven_name,
            "vtn_url": vtn_url,
            "cert": cert,
            "key": key,
            "ca_file": vtn_ca_file,
        }
        self.client: OpenADRClient | None = None
        self.registered = asyncio.Event()

    def _new_client(self) -> OpenADRClient:
        client = OpenADRClient(**self._client_options)
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
            if client.registration_id:
                self.client = client
                self.registered.set()
                log.info("registered with the VTN as %s", client.ven_id)
                return
            await client.stop()
            log.warning("registration failed; retrying in %.0f s", delay_s)
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
        previous = self._caps.pop(event_id, [])
        if previous:
            self.decider.withdraw(previous)
        if descriptor.get("event_status") == enums.EVENT_STATUS.CANCELLED:
            log.info("event %s cancelled; %d caps withdrawn", event_id, len(previous))
            return OPT_IN
        started = time.perf_counter()
        try:
            caps = event_caps(event, self.mapping, self.sites)
        except DrMappingError as exc:
            decision = Decision(False, str(exc), time.perf_counter() - started)
        else:
            decision = self.decider.decide(caps) if caps else Decision(True, "no caps", 0.0)
            if decision.honour and caps:
                self.decider.apply(caps)
                self._caps[event_id] = caps
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


def _bind(function: Any, site_id: str) -> Any:
    """A report callback for one site (openleadr calls it with no arguments)."""

    def value() -> float:
        return float(function(site_id))

    return value
