"""Energy bookkeeping shared by every strategy, the KPIs and the checker (no Pyomo).

``soc[b+1] = soc[b] + eff * charge_kw[s] * dt_h - compute_kw * running[s] * dt_h`` (rule 3) and
``grid_import_kw[s] = max(0, sum of charge_kw at the site - pv_kw[s])`` (rule 8).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from optimizer.problem import Scenario, Vehicle

#: Shortfall below this is solver tolerance, not an owner's energy [kWh] (0.1 Wh).
SHORTFALL_TOLERANCE_KWH = 1e-4


def soc_path_kwh(
    scenario: Scenario, vehicle: Vehicle, charge_kw: Sequence[float], running: Sequence[int]
) -> list[float | None]:
    """State of charge at the N+1 boundaries [kWh]; None outside the vehicle's window."""
    dt_h = scenario.horizon.dt_h
    window = scenario.window(vehicle)
    soc: list[float | None] = [None] * (scenario.horizon.slots + 1)
    if len(window) == 0:
        return soc
    level = vehicle.soc_kwh
    soc[window.first] = level
    eff = vehicle.charge_efficiency_frac
    for s in window.slots:
        level = level + eff * charge_kw[s] * dt_h - vehicle.compute_kw * running[s] * dt_h
        soc[s + 1] = level
    return soc


def final_soc_kwh(
    scenario: Scenario, vehicle: Vehicle, charge_kw: Sequence[float], running: Sequence[int]
) -> float:
    """Energy at the last usable boundary (``soc_kwh`` if the window is empty) [kWh]."""
    window = scenario.window(vehicle)
    if len(window) == 0:
        return vehicle.soc_kwh
    level = soc_path_kwh(scenario, vehicle, charge_kw, running)[window.last]
    assert level is not None
    return level


def deficit_kwh(
    scenario: Scenario, vehicle: Vehicle, charge_kw: Sequence[float], running: Sequence[int]
) -> float:
    """``max(0, soc_kwh - soc at the last usable boundary)`` [kWh]."""
    return max(0.0, vehicle.soc_kwh - final_soc_kwh(scenario, vehicle, charge_kw, running))


def shortfall_kwh(
    scenario: Scenario, vehicle: Vehicle, charge_kw: Sequence[float], running: Sequence[int]
) -> float:
    """Rule 5: ``max(0, required_kwh - soc at the last usable boundary)`` for a vehicle
    departing in the horizon, else 0 [kWh]; below ``SHORTFALL_TOLERANCE_KWH`` it is 0."""
    required = scenario.required_departure_kwh(vehicle)
    if required is None:
        return 0.0
    short = required - final_soc_kwh(scenario, vehicle, charge_kw, running)
    return short if short > SHORTFALL_TOLERANCE_KWH else 0.0


def throughput_kwh(
    scenario: Scenario, vehicle: Vehicle, charge_kw: Sequence[float], running: Sequence[int]
) -> float:
    """Energy into plus out of the battery over the horizon [kWh] (what wear is charged on)."""
    dt_h = scenario.horizon.dt_h
    return math.fsum(
        vehicle.charge_efficiency_frac * c * dt_h + vehicle.compute_kw * r * dt_h
        for c, r in zip(charge_kw, running, strict=True)
    )


def site_load_kw(
    scenario: Scenario, charge_kw: Mapping[str, Sequence[float]]
) -> dict[str, list[float]]:
    """Sum of the charge power of each site's vehicles per slot [kW]."""
    n = scenario.horizon.slots
    load = {site.id: [0.0] * n for site in scenario.sites}
    for vehicle in scenario.vehicles:
        series = charge_kw.get(vehicle.id)
        if series is None:
            continue
        site_load = load[vehicle.site]
        for s in range(n):
            site_load[s] += series[s]
    return load


def site_import_kw(
    scenario: Scenario, charge_kw: Mapping[str, Sequence[float]]
) -> dict[str, list[float]]:
    """Grid import per site and slot, ``max(0, load - pv)`` [kW]."""
    load = site_load_kw(scenario, charge_kw)
    return {
        site.id: [max(0.0, ld - pv) for ld, pv in zip(load[site.id], site.pv_kw, strict=True)]
        for site in scenario.sites
    }


def pv_used_kw(
    scenario: Scenario, charge_kw: Mapping[str, Sequence[float]]
) -> dict[str, list[float]]:
    """PV power actually used per site and slot, ``min(load, pv)`` [kW]."""
    load = site_load_kw(scenario, charge_kw)
    return {
        site.id: [min(ld, pv) for ld, pv in zip(load[site.id], site.pv_kw, strict=True)]
        for site in scenario.sites
    }
