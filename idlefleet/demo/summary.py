"""The demo's summary: what the fleet did, judged on the day as it really was.

The realised schedule (what the simulated chargers and accelerators did under the rolling
MILP) is scored with the optimizer's own KPI code and feasibility checker on a hindsight
scenario: the real arrivals, departures and energies, the actual carbon intensity and PV.
On the same scenario the `immediate` baseline and a perfect-foresight MILP are planned,
so every figure in the table is computed the same way.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from forecasting.carbon import intensity_on_grid
from forecasting.timegrid import SlotGrid
from idlefleet.service.planner import PlannerService
from idlefleet.sim.fleet import SimulatedCar
from idlefleet.sim.scenarios import fleet_scenario
from idlefleet.sites import SiteConfig
from optimizer import (
    Plan,
    Scenario,
    assemble_plan,
    check_plan,
    format_timestamp,
    plan_scenario,
)
from optimizer.plan import Assignment, SolveStatus
from streams.messages import Job, Message, SolarForecast
from streams.topics import Stream

if TYPE_CHECKING:
    from idlefleet.demo.ocpp import OcppSummary


@dataclass(frozen=True)
class StrategyOutcome:
    """One strategy scored on the hindsight scenario."""

    strategy: str
    emissions_kg: float
    deferred_emissions_kg: float
    grid_energy_kwh: float
    pv_energy_kwh: float
    wear_cost: float
    executions: int
    unmet_shards: int
    #: Owners who left with what they were owed (floors held) [count].
    owners_met: int
    #: Energy departing owners were left short, summed [kWh].
    shortfall_kwh: float
    #: Hard rules broken (grid limits, DR caps, floors, battery bounds): none, or a bug.
    violations: list[str]


@dataclass(frozen=True)
class OwnerOutcome:
    vehicle_id: str
    site_id: str
    arrival: str
    departure: str
    arrival_kwh: float
    #: What the owner was owed at departure [kWh]; None when the car was still parked when
    #: the demo ended (it owed nothing in this horizon).
    owed_kwh: float | None
    departure_kwh: float
    lowest_kwh: float
    floor_kwh: float
    shortfall_kwh: float
    met: bool


@dataclass(frozen=True)
class JobOutcomeRow:
    job_id: str
    executions: int
    accepted: int
    failed_results: int


@dataclass(frozen=True)
class DemoSummary:
    start: str
    slots: int
    slot_minutes: int
    cars: int
    sites: list[str]
    jobs: list[JobOutcomeRow]
    strategies: list[StrategyOutcome]
    owners: list[OwnerOutcome]
    plans_made: int
    mean_solve_s: float
    max_solve_s: float
    dead_letters: int
    elapsed_s: float
    #: Files per content type, when the jobs ran Magika [count].
    content_types: dict[str, int] = field(default_factory=dict)
    #: Planned against metered energy, when the cars charged at OCPP stations.
    ocpp: OcppSummary | None = None

    @property
    def owners_met(self) -> int:
        return sum(owner.met for owner in self.owners)

    @property
    def floors_held(self) -> bool:
        return all(owner.lowest_kwh >= owner.floor_kwh - 1e-6 for owner in self.owners)

    def table(self) -> str:
        """The human-readable summary."""
        lines = [
            f"idlefleet demo: {self.cars} cars at {len(self.sites)} sites "
            f"({', '.join(self.sites)}), {self.slots} slots of {self.slot_minutes} min "
            f"from {self.start}",
            "",
            f"{'job':<24}{'executions':>12}{'done':>8}{'failed':>8}",
        ]
        for job in self.jobs:
            lines.append(
                f"{job.job_id:<24}{job.executions:>12}{job.accepted:>8}{job.failed_results:>8}"
            )
        lines += [
            "",
            f"{'strategy':<22}{'CO2 kg':>9}{'deferred':>10}{'grid kWh':>10}{'PV kWh':>9}"
            f"{'shards':>8}{'unmet':>7}{'short kWh':>11}{'owners ok':>11}",
        ]
        for s in self.strategies:
            lines.append(
                f"{s.strategy:<22}{s.emissions_kg:>9.2f}{s.deferred_emissions_kg:>10.2f}"
                f"{s.grid_energy_kwh:>10.1f}{s.pv_energy_kwh:>9.1f}{s.executions:>8}"
                f"{s.unmet_shards:>7}{s.shortfall_kwh:>11.2f}{s.owners_met:>6}/{len(self.owners)}"
            )
        realised, immediate = self.strategies[0], self.strategies[1]
        if immediate.emissions_kg > 0:
            saving = 1 - realised.emissions_kg / immediate.emissions_kg
            lines.append(f"\nemissions: {saving:.1%} below charging on arrival (immediate)")
        short = [o for o in self.owners if o.shortfall_kwh > 0]
        owners_line = (
            f"owners who left with what they were owed: {self.owners_met}/{len(self.owners)}"
        )
        if short:
            names = ", ".join(o.vehicle_id for o in short[:6]) + (", ..." if len(short) > 6 else "")
            least_kwh = self.strategies[-1].shortfall_kwh
            owners_line += (
                f"; {len(short)} left {sum(o.shortfall_kwh for o in short):.2f} kWh short "
                f"({names}); least possible with perfect foresight: {least_kwh:.2f} kWh"
            )
        lines += [
            owners_line,
            "floors: held for every owner" if self.floors_held else "floors: BROKEN",
            f"plans: {self.plans_made} (mean solve {self.mean_solve_s:.2f} s, "
            f"max {self.max_solve_s:.2f} s); dead letters: {self.dead_letters}; "
            f"wall time {self.elapsed_s:.1f} s",
        ]
        if self.content_types:
            top = ", ".join(f"{label} {n}" for label, n in list(self.content_types.items())[:8])
            lines.append(f"magika labelled {sum(self.content_types.values())} files: {top}")
        if self.ocpp is not None:
            lines += ["", *self.ocpp.lines()]
        for s in self.strategies:
            for violation in s.violations[:5]:
                lines.append(f"VIOLATION ({s.strategy}): {violation}")
        return "\n".join(lines)

    def write(self, out_dir: Path) -> None:
        (out_dir / "summary.json").write_text(json.dumps(asdict(self), indent=2) + "\n")
        (out_dir / "summary.txt").write_text(self.table() + "\n")


def hindsight_scenario(
    grid: SlotGrid,
    sites: list[SiteConfig],
    fleet: list[SimulatedCar],
    jobs: list[Job],
    forecasts: list[tuple[Stream, Message]],
    actual_intensity_g_per_kwh: dict[str, list[float]],
    carbon_price_per_tonne: float,
) -> Scenario:
    """The day as it was, as a scenario.

    PV comes from the published `forecasts`; the intensity per region is the actual
    average series on `grid` [gCO2/kWh], not what was forecast to the planner.
    """
    solar = {m.site_id: m.pv_kw for _, m in forecasts if isinstance(m, SolarForecast)}
    return fleet_scenario(
        grid, sites, fleet, jobs, actual_intensity_g_per_kwh, solar, carbon_price_per_tonne
    )


def realised_plan(
    scenario: Scenario, grid: SlotGrid, fleet: list[SimulatedCar], service: PlannerService
) -> Plan:
    """What the chargers and accelerators actually did, as a plan of the hindsight scenario."""
    slot = timedelta(minutes=grid.slot_minutes)
    starts = [grid.slot_start(s) for s in range(grid.slots)]
    charge = {car.vehicle_id: [car.charge_kw_by_slot.get(t, 0.0) for t in starts] for car in fleet}
    running = {car.vehicle_id: [int(t in car.compute_slots) for t in starts] for car in fleet}
    executions: Counter[tuple[str, str, int]] = Counter()
    for result in service.accepted_results:
        index = int((result.finished_at - grid.start) // slot)
        executions[(result.job_id, result.vehicle_id, index)] += 1
    assignments = [
        Assignment(job, vehicle, index, n) for (job, vehicle, index), n in executions.items()
    ]
    return assemble_plan(
        scenario, "realised (rolling MILP)", SolveStatus.feasible, charge, running, assignments
    )


def _outcome(scenario: Scenario, plan: Plan) -> StrategyOutcome:
    found = check_plan(scenario, plan)
    assert plan.kpis is not None  # every plan has a schedule (contract v2)
    bad_vehicles = {v.subject for v in found} | {
        vid for vid, schedule in plan.vehicles.items() if schedule.shortfall_kwh > 0
    }
    return StrategyOutcome(
        strategy=plan.strategy,
        emissions_kg=plan.kpis.emissions_kg,
        deferred_emissions_kg=plan.kpis.deferred_emissions_kg,
        grid_energy_kwh=plan.kpis.grid_energy_kwh,
        pv_energy_kwh=plan.kpis.pv_energy_kwh,
        wear_cost=plan.kpis.wear_cost,
        executions=sum(o.executions for o in plan.jobs.values()),
        unmet_shards=plan.kpis.unmet_shards,
        owners_met=sum(v.id not in bad_vehicles for v in scenario.vehicles),
        shortfall_kwh=plan.kpis.shortfall_kwh,
        violations=[str(v) for v in found],
    )


def _owner(car: SimulatedCar, plan: Plan, scenario: Scenario) -> OwnerOutcome:
    """What the realised day did to one owner: owed and got at departure, lowest energy."""
    vehicle = scenario.vehicle_by_id[car.vehicle_id]
    owed = scenario.required_departure_kwh(vehicle)
    path = [x for x in plan.vehicles[car.vehicle_id].soc_kwh if x is not None]
    departed = car.departure_energy_kwh if car.departure_energy_kwh is not None else car.energy_kwh
    lowest = min(path) if path else car.arrival_energy_kwh
    short = plan.vehicles[car.vehicle_id].shortfall_kwh
    return OwnerOutcome(
        vehicle_id=car.vehicle_id,
        site_id=car.site.site_id,
        arrival=format_timestamp(car.arrival),
        departure=format_timestamp(car.departure),
        arrival_kwh=car.arrival_energy_kwh,
        owed_kwh=None if owed is None else round(owed, 6),
        departure_kwh=round(departed, 6),
        lowest_kwh=round(lowest, 6),
        floor_kwh=vehicle.floor_kwh,
        shortfall_kwh=round(short, 6),
        met=short == 0 and lowest >= vehicle.floor_kwh - 1e-6,
    )


def summarise(
    grid: SlotGrid,
    sites: list[SiteConfig],
    fleet: list[SimulatedCar],
    jobs: list[Job],
    service: PlannerService,
    forecasts: list[tuple[Stream, Message]],
    elapsed_s: float,
    data_dir: Path | None = None,
) -> DemoSummary:
    """Score the day; the actual intensity comes from the shipped excerpt or `data_dir`."""
    actual = {
        region: intensity_on_grid(region, grid, data_dir).tolist()
        for region in sorted({site.region for site in sites})
    }
    scenario = hindsight_scenario(
        grid, sites, fleet, jobs, forecasts, actual, service.settings.carbon_price_per_tonne
    )
    realised = realised_plan(scenario, grid, fleet, service)
    baseline = plan_scenario(scenario, "immediate")
    foresight = plan_scenario(
        scenario,
        "milp",
        time_limit_s=service.settings.solver_time_limit_s,
        mip_gap_frac=service.settings.solver_mip_gap_frac,
    )
    foresight = replace(foresight, strategy="milp (perfect foresight)")
    solve_times = [record.solve_s for record in service.plans] or [0.0]
    progress = service.ledger_snapshot().progress
    return DemoSummary(
        start=format_timestamp(grid.start),
        slots=grid.slots,
        slot_minutes=grid.slot_minutes,
        cars=len(fleet),
        sites=[site.site_id for site in sites],
        jobs=[
            JobOutcomeRow(
                job.job_id,
                job.shards * job.replicas,
                progress[job.job_id].accepted,
                progress[job.job_id].failed_results,
            )
            for job in jobs
        ],
        strategies=[_outcome(scenario, plan) for plan in (realised, baseline, foresight)],
        owners=[_owner(car, realised, scenario) for car in fleet],
        plans_made=len(service.plans),
        mean_solve_s=sum(solve_times) / len(solve_times),
        max_solve_s=max(solve_times),
        dead_letters=service.dead_letters,
        elapsed_s=elapsed_s,
    )
