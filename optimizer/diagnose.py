"""Why cars leave short: which vehicles, by how much, and what limits each of them.

A departure shortfall has few causes under the contract: the site's grid connection (shared
with the other cars charging there), the DR caps in force while the car is parked, or, for a
baseline, its own charging order (it leaves more than the least possible). Charger power and
time in the window already cap the required energy (rule 5), so they cause no shortfall, but
when they keep a car below its owner's target that is said too.

Whether grid limits or DR caps bind is told by the least total shortfall with and without the
DR caps (`optimizer.shortfall`).
"""

from __future__ import annotations

from dataclasses import replace

from optimizer.plan import Plan
from optimizer.problem import Scenario, Vehicle
from optimizer.shortfall import MIN_SHORTFALL_KWH, least_total_shortfall_kwh
from optimizer.strategy import Strategy


def explain_shortfall(scenario: Scenario, plan: Plan, least_kwh: float) -> Plan:
    """``plan`` with each short vehicle's `limited_by`, a `reason` and the `offending_ids`
    (vehicles, sites, DR events); unchanged when nobody is short. ``least_kwh`` is the least
    total shortfall of ``scenario`` [kWh]."""
    short = {vid: vs for vid, vs in plan.vehicles.items() if vs.shortfall_kwh > 0}
    if not short:
        return plan
    total = plan.shortfall_kwh
    without_dr = (
        least_total_shortfall_kwh(scenario, with_dr=False) if scenario.dr_events else least_kwh
    )
    grid_bound = without_dr > MIN_SHORTFALL_KWH
    dr_bound = least_kwh > without_dr + MIN_SHORTFALL_KWH
    policy_bound = plan.strategy != Strategy.MILP and total > least_kwh + MIN_SHORTFALL_KWH
    sites: set[str] = set()
    events: set[str] = set()
    vehicles = dict(plan.vehicles)
    for vid, schedule in short.items():
        vehicle = scenario.vehicle_by_id[vid]
        limits = []
        if grid_bound:
            site = scenario.site_by_id[vehicle.site]
            limits.append(f"grid limit of {site.id} ({site.grid_limit_kw:g} kW)")
            sites.add(site.id)
        if dr_bound:
            for event_id in _events_in_force(scenario, vehicle):
                limits.append(f"DR cap {event_id}")
                events.add(event_id)
        if policy_bound:
            limits.append(f"the {plan.strategy} baseline's charging order")
        limits.extend(_own_limits(scenario, vehicle))
        vehicles[vid] = replace(schedule, limited_by=tuple(limits))
    culprits = [
        *([f"grid limits of {', '.join(sorted(sites))}"] if sites else []),
        *([f"DR caps {', '.join(sorted(events))}"] if events else []),
        *([f"the {plan.strategy} baseline's charging order"] if policy_bound else []),
    ]
    reason = (
        f"{len(short)} vehicles leave {total:.3f} kWh short of their departure energy "
        f"(least possible {least_kwh:.3f} kWh): {', '.join(sorted(short))}; limited by "
        f"{' and '.join(culprits) or 'solver tolerance'}"
    )
    return replace(
        plan,
        vehicles=vehicles,
        reason=reason,
        offending_ids=(*sorted(short), *sorted(sites), *sorted(events)),
    )


def _events_in_force(scenario: Scenario, vehicle: Vehicle) -> list[str]:
    """DR events in force at the vehicle's site or region during its window."""
    window = set(scenario.window(vehicle).slots)
    region = scenario.site_by_id[vehicle.site].region
    return [
        event.id
        for event in scenario.dr_events
        if (event.site == vehicle.site or event.region == region)
        and window & set(scenario.dr_slots(event))
    ]


def _own_limits(scenario: Scenario, vehicle: Vehicle) -> list[str]:
    """Charger power and time parked, when they keep the car below its owner's target."""
    required = scenario.required_departure_kwh(vehicle)
    if required is None or required >= vehicle.wished_kwh - MIN_SHORTFALL_KWH:
        return []
    hours = len(scenario.window(vehicle)) * scenario.horizon.dt_h
    return [
        f"charger {vehicle.charger_kw:g} kW over {hours:g} h parked reaches "
        f"{required:.2f} of the {vehicle.wished_kwh:.2f} kWh target"
    ]
