"""A plan and its scenario as arrays: one row per vehicle or site, one column per slot.

Built once per plan, so that views for thousands of cars cost one vectorised pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from optimizer import Horizon
from optimizer.plan import PlanSnapshot

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PlanArrays:
    """Per vehicle ``(V, N)``, boundary ``(V, N+1)`` and site ``(S, N)`` figures of a plan.

    Vehicles and sites are in scenario order. ``soc_kwh`` is NaN outside a vehicle's window;
    ``end_kwh`` is what its last usable boundary must hold to keep the owner whole: the rule-5
    departure level, or the plan's own end energy for a car that stays past the horizon.
    """

    horizon: Horizon
    vehicle_ids: tuple[str, ...]
    vehicle_row: dict[str, int]
    site_ids: tuple[str, ...]
    site_regions: tuple[str, ...]
    site_of_vehicle: IntArray  # (V,) index into site_ids
    usable: BoolArray  # (V, N) parked, by the scenario's window
    charge_kw: FloatArray  # (V, N) grid power drawn [kW]
    running: FloatArray  # (V, N) accelerator on: 0 or 1
    shards: FloatArray  # (V, N) planned shard executions [count]
    soc_kwh: FloatArray  # (V, N+1) battery energy [kWh]
    charger_kw: FloatArray  # (V,)
    efficiency_frac: FloatArray  # (V,)
    battery_kwh: FloatArray  # (V,)
    floor_kwh: FloatArray  # (V,)
    end_kwh: FloatArray  # (V,)
    last_boundary: IntArray  # (V,)
    compute_kw: FloatArray  # (V,)
    compute_shards: FloatArray  # (V,) shards_per_slot when the car may compute, else 0
    pv_kw: FloatArray  # (S, N) on-site PV [kW]
    cap_kw: FloatArray  # (S, N) grid limit and site DR caps in force [kW]
    import_kw: FloatArray  # (S, N) planned grid import [kW]
    region_cap_kw: dict[str, FloatArray]  # (N,) region DR cap, inf when none is in force
    site_matrix: FloatArray  # (S, V) one-hot: vehicle v is at site s

    def by_site(self, values: FloatArray) -> FloatArray:
        """Sum ``(V, N)`` vehicle figures per site: ``(S, N)``."""
        return self.site_matrix @ values


def plan_arrays(snapshot: PlanSnapshot) -> PlanArrays:
    plan, scenario = snapshot.plan, snapshot.scenario
    horizon = scenario.horizon
    n = horizon.slots
    vehicles = scenario.vehicles
    count = len(vehicles)
    site_index = {site.id: i for i, site in enumerate(scenario.sites)}
    vehicle_index = {v.id: i for i, v in enumerate(vehicles)}
    usable = np.zeros((count, n), dtype=bool)
    charge = np.zeros((count, n))
    running = np.zeros((count, n))
    soc = np.full((count, n + 1), np.nan)
    last = np.zeros(count, dtype=np.int64)
    end = np.zeros(count)
    for i, vehicle in enumerate(vehicles):
        window = scenario.window(vehicle)
        usable[i, window.first : window.last] = True
        last[i] = window.last
        schedule = plan.vehicles.get(vehicle.id)
        if schedule is not None:
            charge[i] = schedule.charge_kw
            running[i] = schedule.running
            soc[i] = [np.nan if x is None else x for x in schedule.soc_kwh]
        required = scenario.required_departure_kwh(vehicle)
        end[i] = soc[i, window.last] if required is None else required
    shards = np.zeros((count, n))
    for assignment in plan.assignments:
        shards[vehicle_index[assignment.vehicle], assignment.slot] += assignment.shards
    site_of_vehicle = np.array([site_index[v.site] for v in vehicles], dtype=np.int64)
    site_matrix = np.zeros((len(scenario.sites), count))
    site_matrix[site_of_vehicle, np.arange(count)] = 1.0
    region_cap = {region.id: np.full(n, np.inf) for region in scenario.regions}
    for event, slots in scenario.region_caps():
        caps = region_cap[event.region or ""]
        caps[slots.start : slots.stop] = np.minimum(
            caps[slots.start : slots.stop], event.max_import_kw
        )
    return PlanArrays(
        horizon=horizon,
        vehicle_ids=tuple(v.id for v in vehicles),
        vehicle_row=vehicle_index,
        site_ids=tuple(site.id for site in scenario.sites),
        site_regions=tuple(site.region for site in scenario.sites),
        site_of_vehicle=site_of_vehicle,
        usable=usable,
        charge_kw=charge,
        running=running,
        shards=shards,
        soc_kwh=soc,
        charger_kw=np.array([v.charger_kw for v in vehicles]),
        efficiency_frac=np.array([v.charge_efficiency_frac for v in vehicles]),
        battery_kwh=np.array([v.battery_kwh for v in vehicles]),
        floor_kwh=np.array([v.floor_kwh for v in vehicles]),
        end_kwh=end,
        last_boundary=last,
        compute_kw=np.array([v.compute_kw for v in vehicles]),
        compute_shards=np.array(
            [v.shards_per_slot if scenario.can_compute(v) else 0 for v in vehicles], dtype=float
        ),
        pv_kw=np.array([site.pv_kw for site in scenario.sites]).reshape(-1, n),
        cap_kw=np.array([scenario.site_cap_kw(site) for site in scenario.sites]).reshape(-1, n),
        import_kw=np.array(
            [plan.grid_import_kw.get(site.id, (0.0,) * n) for site in scenario.sites]
        ).reshape(-1, n),
        region_cap_kw=region_cap,
        site_matrix=site_matrix,
    )
