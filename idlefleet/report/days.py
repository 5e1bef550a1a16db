"""One day's outcome per strategy, reduced from its accounted plan to what the report needs.

Everything here is recomputed from the plan's schedule (charge power, running flags, energy
path, assignments) and the scenario it is accounted on: per-site slot series, a row per
vehicle (energy, wear, carbon, the owner's target and floor) and a row per job. A vehicle's
carbon is its share of its site's grid import, slot by slot in proportion to its charge
power, at the slot's intensity, plus the contract's deferred emissions of its deficit; the
shares of a day add up to the plan's `emissions_kg`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from optimizer import format_timestamp
from optimizer.energy import deficit_kwh, pv_used_kw, site_load_kw, throughput_kwh
from optimizer.plan import Kpis, Plan
from optimizer.problem import Scenario

G_PER_KG = 1000.0
#: Absolute tolerance of energy and power comparisons [kWh], [kW].
TOLERANCE = 1e-6


@dataclass(frozen=True)
class VehicleDay:
    """One vehicle's day under one strategy; energies [kWh], costs [currency], times UTC.

    `charge_energy_kwh` is drawn from the charger (grid and PV), `compute_energy_kwh` drawn
    from the battery by the accelerator; `owed_kwh` is the contract's rule-5 level at
    departure (None when the car leaves after the horizon), `shortfall_kwh` what the car
    left short of it.
    """

    vehicle_id: str
    site_id: str
    arrival: str
    departure: str
    battery_kwh: float
    charge_efficiency_frac: float
    arrival_kwh: float
    target_kwh: float
    floor_kwh: float
    owed_kwh: float | None
    departure_kwh: float
    lowest_kwh: float
    shortfall_kwh: float
    charge_energy_kwh: float
    compute_energy_kwh: float
    throughput_kwh: float
    deficit_kwh: float
    wear_cost: float
    emissions_kg: float

    @property
    def target_met(self) -> bool:
        """No shortfall at departure, and never below the floor."""
        return self.shortfall_kwh == 0 and self.lowest_kwh >= self.floor_kwh - TOLERANCE


@dataclass(frozen=True)
class JobDay:
    job_id: str
    executions_required: int
    executions: int

    @property
    def on_time(self) -> bool:
        """Every execution ran inside the job's window (the only slots it may use)."""
        return self.executions >= self.executions_required


@dataclass(frozen=True)
class SiteSlots:
    """A site's series over the day [kW per slot; running vehicles as a count]."""

    charge_kw: np.ndarray
    compute_kw: np.ndarray
    running_vehicles: np.ndarray
    pv_used_kw: np.ndarray
    grid_import_kw: np.ndarray


@dataclass(frozen=True)
class StrategyDay:
    """A strategy's day: its plan's status and gap, contract KPIs on the actual intensity,
    and the reductions above; a day without a plan has only `status` and `reason`."""

    strategy: str
    status: str
    gap_frac: float | None = None
    reason: str | None = None
    kpis: Kpis | None = None
    sites: dict[str, SiteSlots] = field(default_factory=dict)
    vehicles: tuple[VehicleDay, ...] = ()
    jobs: tuple[JobDay, ...] = ()
    dr_events: int = 0
    dr_events_honoured: int = 0
    soc_samples_kwh: dict[str, tuple[float | None, ...]] = field(default_factory=dict)

    @property
    def planned(self) -> bool:
        return self.kpis is not None


@dataclass(frozen=True)
class DayResult:
    """Every strategy on one planning horizon (a UTC day in batch runs).

    `forecast_g_per_kwh` is what the plans saw, None when they planned on the actual series
    (a scenario file); `forecaster` names the day-ahead method used.
    """

    label: str
    start: datetime
    slot_minutes: int
    slots: int
    actual_g_per_kwh: dict[str, np.ndarray]
    forecast_g_per_kwh: dict[str, np.ndarray] | None
    forecaster: str | None
    site_region: dict[str, str]
    pv_kw: dict[str, np.ndarray]
    strategies: dict[str, StrategyDay]
    sample_vehicles: tuple[str, ...] = ()

    @property
    def dt_h(self) -> float:
        return self.slot_minutes / 60.0

    @property
    def all_planned(self) -> bool:
        return all(s.planned for s in self.strategies.values())


def strategy_day(
    scenario: Scenario, plan: Plan, gap_frac: float | None, samples: tuple[str, ...]
) -> StrategyDay:
    """Reduce a feasible `plan` accounted on `scenario` (soc paths kept for `samples`)."""
    assert plan.kpis is not None, "only plans with a schedule are reduced"
    return StrategyDay(
        strategy=plan.strategy,
        status=plan.status.value,
        gap_frac=gap_frac,
        kpis=plan.kpis,
        sites=site_slots(scenario, plan),
        vehicles=vehicle_days(scenario, plan),
        jobs=tuple(
            JobDay(job.id, job.executions_required, plan.jobs[job.id].executions)
            for job in scenario.jobs
        ),
        dr_events=len(scenario.dr_events),
        dr_events_honoured=dr_events_honoured(scenario, plan),
        soc_samples_kwh={vid: plan.vehicles[vid].soc_kwh for vid in samples},
    )


def _charge_kw(plan: Plan) -> dict[str, tuple[float, ...]]:
    return {vid: vs.charge_kw for vid, vs in plan.vehicles.items()}


def site_slots(scenario: Scenario, plan: Plan) -> dict[str, SiteSlots]:
    """Charge, compute and PV power and running vehicles per site and slot."""
    charge = _charge_kw(plan)
    load = site_load_kw(scenario, charge)
    pv_used = pv_used_kw(scenario, charge)
    n = scenario.horizon.slots
    compute = {site.id: np.zeros(n) for site in scenario.sites}
    running = {site.id: np.zeros(n, dtype=int) for site in scenario.sites}
    for v in scenario.vehicles:
        flags = np.asarray(plan.vehicles[v.id].running, dtype=int)
        compute[v.site] += v.compute_kw * flags
        running[v.site] += flags
    return {
        site.id: SiteSlots(
            charge_kw=np.asarray(load[site.id]),
            compute_kw=compute[site.id],
            running_vehicles=running[site.id],
            pv_used_kw=np.asarray(pv_used[site.id]),
            grid_import_kw=np.asarray(plan.grid_import_kw[site.id]),
        )
        for site in scenario.sites
    }


def vehicle_days(scenario: Scenario, plan: Plan) -> tuple[VehicleDay, ...]:
    """A row per vehicle; grid emissions shared out by charge power within each site slot."""
    dt_h = scenario.horizon.dt_h
    charge = _charge_kw(plan)
    load = {sid: np.asarray(x) for sid, x in site_load_kw(scenario, charge).items()}
    import_frac = {
        sid: np.divide(np.asarray(plan.grid_import_kw[sid]), x, out=np.zeros_like(x), where=x > 0)
        for sid, x in load.items()
    }
    rows = []
    for v in scenario.vehicles:
        schedule = plan.vehicles[v.id]
        charge_kw = np.asarray(schedule.charge_kw)
        region = scenario.region_of(v)
        intensity = np.asarray(region.intensity_g_per_kwh)
        grid_g = float(np.sum(charge_kw * dt_h * import_frac[v.site] * intensity))
        deficit = deficit_kwh(scenario, v, schedule.charge_kw, schedule.running)
        deferred_g = deficit / v.charge_efficiency_frac * region.mean_intensity_g_per_kwh
        path = [x for x in schedule.soc_kwh if x is not None]
        moved_kwh = throughput_kwh(scenario, v, schedule.charge_kw, schedule.running)
        rows.append(
            VehicleDay(
                vehicle_id=v.id,
                site_id=v.site,
                arrival=format_timestamp(v.arrival),
                departure=format_timestamp(v.departure),
                battery_kwh=v.battery_kwh,
                charge_efficiency_frac=v.charge_efficiency_frac,
                arrival_kwh=v.soc_kwh,
                target_kwh=v.wished_kwh,
                floor_kwh=v.floor_kwh,
                owed_kwh=scenario.required_departure_kwh(v),
                departure_kwh=path[-1] if path else v.soc_kwh,
                lowest_kwh=min(path) if path else v.soc_kwh,
                shortfall_kwh=schedule.shortfall_kwh,
                charge_energy_kwh=float(np.sum(charge_kw)) * dt_h,
                compute_energy_kwh=v.compute_kw * sum(schedule.running) * dt_h,
                throughput_kwh=moved_kwh,
                deficit_kwh=deficit,
                wear_cost=v.wear_cost_per_kwh * moved_kwh,
                emissions_kg=(grid_g + deferred_g) / G_PER_KG,
            )
        )
    return tuple(rows)


def dr_events_honoured(scenario: Scenario, plan: Plan) -> int:
    """DR events whose cap held in every slot it covers (site import, or summed over a
    region's sites)."""
    honoured = 0
    for event in scenario.dr_events:
        sites = (
            [event.site]
            if event.site is not None
            else [s.id for s in scenario.sites_in_region(event.region or "")]
        )
        honoured += all(
            sum(plan.grid_import_kw[sid][s] for sid in sites) <= event.max_import_kw + TOLERANCE
            for s in scenario.dr_slots(event)
        )
    return honoured


def sample_vehicles(scenario: Scenario, count: int = 3) -> tuple[str, ...]:
    """Up to `count` vehicles to draw: participating, owed more than they arrive with,
    longest parked first (ties by id)."""
    owed = [
        v
        for v in scenario.vehicles
        if v.participating and (scenario.required_departure_kwh(v) or 0.0) > v.soc_kwh
    ]
    owed.sort(key=lambda v: (-len(scenario.window(v)), v.id))
    return tuple(v.id for v in owed[:count])
