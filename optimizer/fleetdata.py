"""A scenario as numpy arrays, for building large models quickly (no solver, no Pyomo).

Vehicles keep the scenario's order. The usable (vehicle, slot) pairs are listed vehicle by
vehicle and slot by slot, so a vehicle's pairs are contiguous and the pair after ``(v, s)``
is ``(v, s+1)``. Costs [currency/kWh], powers [kW], energies [kWh].
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np

from optimizer.costs import deficit_cost_per_kwh, import_cost_per_kwh
from optimizer.problem import Scenario


@dataclass(frozen=True)
class FleetArrays:
    """Per-vehicle (first axis: vehicles) and per-site (sites x slots) arrays."""

    slots: int
    dt_h: float
    site_ids: tuple[str, ...]
    vehicle_ids: tuple[str, ...]
    site: np.ndarray  # site index of each vehicle
    first: np.ndarray  # first usable slot
    last: np.ndarray  # one past the last usable slot
    charger_kw: np.ndarray
    efficiency_frac: np.ndarray
    compute_kw: np.ndarray
    shards_per_slot: np.ndarray
    wear_cost_per_kwh: np.ndarray
    can_compute: np.ndarray  # participating with shards_per_slot > 0
    soc_kwh: np.ndarray
    floor_kwh: np.ndarray
    battery_kwh: np.ndarray
    required_kwh: np.ndarray  # rule 5 level at the last boundary; NaN when none is owed
    deficit_cost_per_kwh: np.ndarray
    import_cost_per_kwh: np.ndarray  # sites x slots
    pv_kw: np.ndarray  # sites x slots
    site_cap_kw: np.ndarray  # sites x slots: grid limit and site DR caps in force

    @classmethod
    def of(cls, scenario: Scenario) -> FleetArrays:
        site_ids = tuple(s.id for s in scenario.sites)
        site_index = {sid: k for k, sid in enumerate(site_ids)}
        vehicles = scenario.vehicles
        windows = [scenario.window(v) for v in vehicles]
        required = [scenario.required_departure_kwh(v) for v in vehicles]
        deficit = deficit_cost_per_kwh(scenario)
        cost = import_cost_per_kwh(scenario)
        return cls(
            slots=scenario.horizon.slots,
            dt_h=scenario.horizon.dt_h,
            site_ids=site_ids,
            vehicle_ids=tuple(v.id for v in vehicles),
            site=np.array([site_index[v.site] for v in vehicles], dtype=np.int64),
            first=np.array([w.first for w in windows], dtype=np.int64),
            last=np.array([w.last for w in windows], dtype=np.int64),
            charger_kw=np.array([v.charger_kw for v in vehicles], dtype=float),
            efficiency_frac=np.array([v.charge_efficiency_frac for v in vehicles], dtype=float),
            compute_kw=np.array([v.compute_kw for v in vehicles], dtype=float),
            shards_per_slot=np.array([v.shards_per_slot for v in vehicles], dtype=np.int64),
            wear_cost_per_kwh=np.array([v.wear_cost_per_kwh for v in vehicles], dtype=float),
            can_compute=np.array([scenario.can_compute(v) for v in vehicles], dtype=bool),
            soc_kwh=np.array([v.soc_kwh for v in vehicles], dtype=float),
            floor_kwh=np.array([v.floor_kwh for v in vehicles], dtype=float),
            battery_kwh=np.array([v.battery_kwh for v in vehicles], dtype=float),
            required_kwh=np.array([np.nan if r is None else r for r in required], dtype=float),
            deficit_cost_per_kwh=np.array([deficit[v.id] for v in vehicles], dtype=float),
            import_cost_per_kwh=np.array([cost[sid] for sid in site_ids], dtype=float),
            pv_kw=np.array([s.pv_kw for s in scenario.sites], dtype=float),
            site_cap_kw=np.array([scenario.site_cap_kw(s) for s in scenario.sites], dtype=float),
        )

    def subset(self, sites: np.ndarray) -> FleetArrays:
        """The vehicles of ``sites`` (fleet site indices) and those sites, re-indexed."""
        keep = np.isin(self.site, sites)
        position = np.full(len(self.site_ids), -1)
        position[sites] = np.arange(len(sites))
        changes: dict[str, object] = {
            "site_ids": tuple(self.site_ids[i] for i in sites),
            "vehicle_ids": tuple(self.vehicle_ids[v] for v in np.flatnonzero(keep)),
            "site": position[self.site[keep]],
        }
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in changes or not isinstance(value, np.ndarray):
                continue
            changes[f.name] = value[sites] if value.ndim == 2 else value[keep]
        return replace(self, **changes)  # type: ignore[arg-type]

    @cached_property
    def window_slots(self) -> np.ndarray:
        """Usable slots per vehicle [count]."""
        return np.maximum(self.last - self.first, 0)

    @cached_property
    def pair_vehicle(self) -> np.ndarray:
        """Vehicle index of every usable (vehicle, slot) pair."""
        return np.repeat(np.arange(len(self.vehicle_ids)), self.window_slots)

    @cached_property
    def pair_start(self) -> np.ndarray:
        """Index of each vehicle's first pair (``len(vehicles) + 1`` offsets)."""
        return np.concatenate([[0], np.cumsum(self.window_slots)])

    def pairs_of(self, vehicles: np.ndarray) -> np.ndarray:
        """The pair indices of ``vehicles`` (vehicle indices, in order), concatenated."""
        starts, stops = self.pair_start[vehicles], self.pair_start[vehicles + 1]
        counts = stops - starts
        return np.repeat(stops - np.cumsum(counts), counts) + np.arange(int(counts.sum()))

    @cached_property
    def pair_slot(self) -> np.ndarray:
        """Slot of every usable pair."""
        offset = np.arange(len(self.pair_vehicle)) - self.pair_start[self.pair_vehicle]
        return self.first[self.pair_vehicle] + offset
