"""Per-plan views: what GetPlan, GetFlexibility and WatchPlan serve, computed once per plan.

Every aggregate (fleet, site, region) is computed when a plan is published and kept as plain
lists; a request only picks a scope and slices its slots. A vehicle's rows are read from the
plan's arrays on request (one row, no aggregation).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from idlefleet.queries.errors import UnknownIdError
from idlefleet.service.inputs import job_of
from optimizer import Plan, format_timestamp
from optimizer.flexibility import FlexibilityRows, region_flexibility, site_flexibility
from optimizer.plan import PlanSnapshot
from optimizer.plan_arrays import FloatArray, PlanArrays, plan_arrays
from streams.sources import DataNote

ScopeKind = Literal["fleet", "site", "region", "vehicle"]
#: Shards per job [count] run in one slot, in job_id order.
Work = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Scope:
    """The whole fleet (id ""), a site, a region or a vehicle."""

    kind: ScopeKind
    id: str = ""


FLEET = Scope("fleet")


@dataclass(frozen=True)
class ScopeSeries:
    """A scope's plan slot by slot: powers [kW], counts, energy at slot start [kWh]."""

    charge_power_kw: list[float]
    grid_import_kw: list[float] | None  # None for a vehicle
    compute_power_kw: list[float]
    running_vehicles: list[int]
    parked_vehicles: list[int]
    energy_start_kwh: list[float | None]
    work: list[Work]


@dataclass(frozen=True)
class FlexibilitySeries:
    """A scope's flexibility slot by slot (definitions in `optimizer.flexibility`)."""

    baseline_import_kw: list[float]
    import_cap_kw: list[float]
    add_power_kw: list[float]
    shed_power_kw: list[float]
    parked_vehicles: list[int]
    compute_capacity_shards: list[int]
    planned_shards: list[int]


@dataclass(frozen=True)
class PlanViews:
    """Everything served about one plan; `revision` grows with every published plan."""

    revision: int
    snapshot: PlanSnapshot
    slot_start_s: list[int]  # slot starts [s since the Unix epoch]
    series: Mapping[Scope, ScopeSeries]  # fleet and sites
    flexibility: Mapping[Scope, FlexibilitySeries]  # fleet, sites and regions
    planned_executions: Mapping[str, int]  # per job_id [count]
    arrays: PlanArrays
    vehicle_work: Mapping[str, Mapping[int, Work]]
    #: What each car's data lacked when the plan was made, in vehicle_id order.
    data_notes: tuple[DataNote, ...] = ()
    #: What each site's cars will lack at departure in the plan, summed [kWh].
    site_shortfall_kwh: Mapping[str, float] = field(default_factory=dict)

    @property
    def plan(self) -> Plan:
        return self.snapshot.plan

    @property
    def plan_id(self) -> str:
        """The id the service's assignments carry."""
        return f"plan-{format_timestamp(self.snapshot.scenario.horizon.start)}"

    def slots_overlapping(self, start: datetime | None, end: datetime | None) -> range:
        """Slots overlapping ``[start, end)``; unset ends are the horizon's."""
        horizon = self.snapshot.scenario.horizon
        first = 0 if start is None else math.floor((start - horizon.start) / horizon.slot_delta)
        last = (
            horizon.slots if end is None else math.ceil((end - horizon.start) / horizon.slot_delta)
        )
        first, last = max(first, 0), min(last, horizon.slots)
        return range(first, max(first, last))

    def slot_series(self, scope: Scope) -> ScopeSeries:
        if scope.kind == "vehicle":
            return self._vehicle_series(scope.id)
        series = self.series.get(scope)
        if series is None:
            raise UnknownIdError(f"{scope.kind} in the current plan", scope.id)
        return series

    def flexibility_series(self, scope: Scope) -> FlexibilitySeries:
        series = self.flexibility.get(scope)
        if series is None:
            raise UnknownIdError(f"{scope.kind} in the current plan", scope.id)
        return series

    def _vehicle_series(self, vehicle_id: str) -> ScopeSeries:
        a = self.arrays
        row = a.vehicle_row.get(vehicle_id)
        if row is None:
            raise UnknownIdError("vehicle in the current plan", vehicle_id)
        usable = a.usable[row].tolist()
        energy = a.soc_kwh[row, :-1].tolist()
        work = self.vehicle_work.get(vehicle_id, {})
        return ScopeSeries(
            charge_power_kw=a.charge_kw[row].tolist(),
            grid_import_kw=None,
            compute_power_kw=(a.running[row] * a.compute_kw[row]).tolist(),
            running_vehicles=[int(x) for x in a.running[row]],
            parked_vehicles=[int(x) for x in usable],
            energy_start_kwh=[
                e if parked else None for e, parked in zip(energy, usable, strict=True)
            ],
            work=[work.get(s, ()) for s in range(len(usable))],
        )


def _work_by(plan: Plan, key_of_vehicle: Mapping[str, str]) -> dict[str, dict[int, Work]]:
    """Planned shards per key (site or vehicle), slot and job."""
    counts: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for a in plan.assignments:
        by_job = counts[key_of_vehicle[a.vehicle]][a.slot]
        job_id = job_of(a.job)
        by_job[job_id] = by_job.get(job_id, 0) + a.shards
    return {
        key: {slot: tuple(sorted(jobs.items())) for slot, jobs in slots.items()}
        for key, slots in counts.items()
    }


@dataclass(frozen=True)
class _SiteRows:
    """Per site and slot ``(S, N)`` sums of the plan."""

    charge_kw: FloatArray
    import_kw: FloatArray
    compute_kw: FloatArray
    running: FloatArray
    parked: FloatArray
    energy_kwh: FloatArray

    @classmethod
    def of(cls, a: PlanArrays) -> _SiteRows:
        return cls(
            charge_kw=a.by_site(a.charge_kw),
            import_kw=a.import_kw,
            compute_kw=a.by_site(a.running * a.compute_kw[:, None]),
            running=a.by_site(a.running),
            parked=a.by_site(a.usable.astype(float)),
            energy_kwh=a.by_site(np.where(a.usable, np.nan_to_num(a.soc_kwh[:, :-1]), 0.0)),
        )

    def series(self, rows: list[int], work: Mapping[int, Work]) -> ScopeSeries:
        """The sum of the site rows `rows` as a series."""

        def total(values: FloatArray) -> FloatArray:
            summed: FloatArray = values[rows].sum(axis=0)
            return summed

        return ScopeSeries(
            charge_power_kw=total(self.charge_kw).tolist(),
            grid_import_kw=total(self.import_kw).tolist(),
            compute_power_kw=total(self.compute_kw).tolist(),
            running_vehicles=[round(x) for x in total(self.running)],
            parked_vehicles=[round(x) for x in total(self.parked)],
            energy_start_kwh=total(self.energy_kwh).tolist(),
            work=[work.get(s, ()) for s in range(self.charge_kw.shape[1])],
        )


def _flexibility_series(rows: FlexibilityRows, row: int) -> FlexibilitySeries:
    return FlexibilitySeries(
        baseline_import_kw=rows.baseline_import_kw[row].tolist(),
        import_cap_kw=rows.import_cap_kw[row].tolist(),
        add_power_kw=rows.add_power_kw[row].tolist(),
        shed_power_kw=rows.shed_power_kw[row].tolist(),
        parked_vehicles=[round(x) for x in rows.parked_vehicles[row]],
        compute_capacity_shards=[round(x) for x in rows.compute_capacity_shards[row]],
        planned_shards=[round(x) for x in rows.planned_shards[row]],
    )


def build_views(
    snapshot: PlanSnapshot, revision: int, data_notes: tuple[DataNote, ...] = ()
) -> PlanViews:
    plan, scenario = snapshot.plan, snapshot.scenario
    a = plan_arrays(snapshot)
    horizon = scenario.horizon
    start_s = round(horizon.start.timestamp())
    site_of = {v.id: v.site for v in scenario.vehicles}
    site_work = _work_by(plan, site_of)
    site_rows = _SiteRows.of(a)
    all_sites = list(range(len(a.site_ids)))
    series = {
        FLEET: site_rows.series(all_sites, _work_by(plan, dict.fromkeys(site_of, "")).get("", {}))
    }
    for i, site_id in enumerate(a.site_ids):
        series[Scope("site", site_id)] = site_rows.series([i], site_work.get(site_id, {}))
    sites = site_flexibility(a)
    flexibility = {
        Scope("site", site_id): _flexibility_series(sites, i)
        for i, site_id in enumerate(a.site_ids)
    }
    region_rows = {
        region.id: region_flexibility(a, sites, region.id) for region in scenario.regions
    }
    for region, rows in region_rows.items():
        flexibility[Scope("region", region)] = _flexibility_series(rows, 0)
    fleet_rows = FlexibilityRows.stack(list(region_rows.values())).sum_rows(
        list(range(len(region_rows)))
    )
    flexibility[FLEET] = _flexibility_series(fleet_rows, 0)
    shortfall_kwh = dict.fromkeys(a.site_ids, 0.0)
    for vehicle_id, vehicle in plan.vehicles.items():
        shortfall_kwh[site_of[vehicle_id]] += vehicle.shortfall_kwh
    planned: dict[str, int] = defaultdict(int)
    for assignment in plan.assignments:
        planned[job_of(assignment.job)] += assignment.shards
    return PlanViews(
        revision=revision,
        snapshot=snapshot,
        slot_start_s=[start_s + s * horizon.slot_minutes * 60 for s in range(horizon.slots)],
        series=series,
        flexibility=flexibility,
        planned_executions=dict(planned),
        arrays=a,
        vehicle_work=_work_by(plan, {v: v for v in site_of}),
        data_notes=data_notes,
        site_shortfall_kwh=shortfall_kwh,
    )
