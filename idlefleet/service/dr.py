"""The planner's answer to a demand-response request: accept a cap only if it costs no owner.

`decide_caps` adds the requested caps to the current rolling scenario and compares the least
departure shortfall with and without them (`optimizer.shortfall`, a linear programme over
charging alone). A cap is accepted only if it adds no shortfall; accepted caps are hard for
every plan after (contract v2). Caps beyond the horizon cannot be judged yet: they are refused
with that reason unless the operator configured otherwise. Accepted caps are published on the
DR topic, where the service picks them up and re-plans; withdrawn caps are published cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from idlefleet.service.inputs import dr_event_of
from idlefleet.service.planner import PlannerService
from optimizer import Scenario, ScenarioError, format_timestamp, load_scenario, scenario_to_dict
from optimizer.flexibility import FlexibilityRows, site_flexibility
from optimizer.plan import PlanSnapshot
from optimizer.plan_arrays import plan_arrays
from optimizer.shortfall import MIN_SHORTFALL_KWH, least_shortfall, least_total_shortfall_kwh
from streams.messages import DemandResponseEvent
from streams.producer import Publisher
from streams.topics import Stream


@dataclass(frozen=True)
class Decision:
    """Whether the fleet can honour a set of caps, and why not."""

    honour: bool
    reason: str
    plan_s: float


class DrDecider(Protocol):
    """What the VEN needs from the planner."""

    def decide(self, caps: Sequence[DemandResponseEvent]) -> Decision:
        """Honour `caps` only if they add no departure shortfall."""
        ...

    def apply(self, caps: Sequence[DemandResponseEvent]) -> None:
        """Make accepted caps binding (the planner re-plans with them)."""
        ...

    def withdraw(self, caps: Sequence[DemandResponseEvent]) -> None:
        """Lift caps of a cancelled or replaced event."""
        ...

    def site_load_kw(self, site_id: str) -> float:
        """Grid import of the site now [kW]."""
        ...

    def site_flexibility_kw(self, site_id: str) -> float:
        """How much the site's load can be shed now without breaking an owner's target [kW]."""
        ...


class PlanningDecider:
    """Decides on the scenario the service would plan now."""

    def __init__(
        self,
        scenario_now: Callable[[], Scenario | None],
        publish: Callable[[DemandResponseEvent], None],
        site_load_kw: Callable[[str], float],
        site_flexibility_kw: Callable[[str], float],
        accept_beyond_horizon: bool = False,
    ) -> None:
        self._scenario_now = scenario_now
        self._publish = publish
        self.site_load_kw = site_load_kw
        self.site_flexibility_kw = site_flexibility_kw
        self.accept_beyond_horizon = accept_beyond_horizon

    def decide(self, caps: Sequence[DemandResponseEvent]) -> Decision:
        return decide_caps(self._scenario_now(), caps, self.accept_beyond_horizon)

    def apply(self, caps: Sequence[DemandResponseEvent]) -> None:
        for cap in caps:
            self._publish(cap)

    def withdraw(self, caps: Sequence[DemandResponseEvent]) -> None:
        for cap in caps:
            self._publish(cap.model_copy(update={"cancelled": True}))


def decide_caps(
    scenario: Scenario | None,
    caps: Sequence[DemandResponseEvent],
    accept_beyond_horizon: bool = False,
) -> Decision:
    """Accept `caps` if, added to `scenario` (the current one), they add no departure shortfall.

    A cap with the id of an event in force modifies it: it is judged against the scenario
    without that event. Caps wholly beyond the horizon are refused unless
    `accept_beyond_horizon`; then they enter planning when the rolling horizon reaches them.
    """
    started = time.perf_counter()
    if scenario is None:
        return Decision(False, "no current scenario to plan (no grid signal yet)", 0.0)
    horizon = scenario.horizon
    inside = [cap for cap in caps if cap.end > horizon.start and cap.start < horizon.end]
    later = len(caps) - len(inside)
    if later and not accept_beyond_horizon:
        return Decision(
            False,
            f"{later} caps lie beyond the planning horizon (until "
            f"{format_timestamp(horizon.end)}) and cannot be judged yet",
            time.perf_counter() - started,
        )
    modified = {cap.event_id for cap in caps}
    before = replace(
        scenario, dr_events=tuple(e for e in scenario.dr_events if e.id not in modified)
    )
    try:
        capped = load_scenario(
            scenario_to_dict(
                replace(before, dr_events=(*before.dr_events, *map(dr_event_of, inside)))
            )
        )
    except ScenarioError as exc:
        return Decision(False, f"caps do not form a valid scenario: {exc}", 0.0)
    short_before = least_total_shortfall_kwh(before)
    short_after = least_shortfall(capped)
    elapsed_s = time.perf_counter() - started
    added = short_after.total_kwh - short_before
    if added > MIN_SHORTFALL_KWH:
        cars = ", ".join(sorted(short_after.by_vehicle))
        return Decision(
            False,
            f"the caps would leave owners {added:.3f} kWh short of their departure energy "
            f"(cars {cars})",
            elapsed_s,
        )
    note = f"; {later} caps beyond the horizon accepted for later planning" if later else ""
    return Decision(True, f"adds no shortfall: every owner's energy still holds{note}", elapsed_s)


class ServiceReadings:
    """Site load and flexibility now, read from the plan the service is dispatching."""

    def __init__(self, service: PlannerService, clock: Callable[[], datetime]) -> None:
        self._service = service
        self._clock = clock
        self._rows: tuple[PlanSnapshot, FlexibilityRows] | None = None

    def _slot(self, snapshot: PlanSnapshot) -> int | None:
        horizon = snapshot.scenario.horizon
        slot = int((self._clock() - horizon.start) // horizon.slot_delta)
        return slot if 0 <= slot < horizon.slots else None

    def site_load_kw(self, site_id: str) -> float:
        """Planned grid import of the site in the current slot [kW]; 0 without a plan."""
        snapshot = self._service.current_plan
        slot = None if snapshot is None else self._slot(snapshot)
        if snapshot is None or slot is None or site_id not in snapshot.plan.grid_import_kw:
            return 0.0
        return float(snapshot.plan.grid_import_kw[site_id][slot])

    def site_flexibility_kw(self, site_id: str) -> float:
        """Import the site can shed in the current slot with every owner still whole [kW]."""
        snapshot = self._service.current_plan
        slot = None if snapshot is None else self._slot(snapshot)
        if snapshot is None or slot is None:
            return 0.0
        if self._rows is None or self._rows[0] is not snapshot:
            self._rows = (snapshot, site_flexibility(plan_arrays(snapshot)))
        site_ids = [site.id for site in snapshot.scenario.sites]
        if site_id not in site_ids:
            return 0.0
        rows = self._rows[1]
        row = site_ids.index(site_id)
        return float(rows.shed_power_kw[row, slot])


def service_decider(
    service: PlannerService, publisher: Publisher, clock: Callable[[], datetime]
) -> PlanningDecider:
    """The decider a running service answers DR events with."""
    readings = ServiceReadings(service, clock)
    slot = timedelta(minutes=service.settings.slot_minutes)

    def scenario_now() -> Scenario | None:
        now = clock()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return service.scenario_now(midnight + ((now - midnight) // slot) * slot)

    return PlanningDecider(
        scenario_now,
        lambda cap: publisher.publish(Stream.DR_EVENTS, cap),
        readings.site_load_kw,
        readings.site_flexibility_kw,
        accept_beyond_horizon=service.settings.dr_accept_beyond_horizon,
    )
