"""How many kW the fleet can add or shed in each slot of a plan, and its compute capacity.

Each slot is taken alone: the rest of the plan may shift to make room, as a re-plan would.
For vehicle v and slot s (dt_h the slot length, eff its charge efficiency, soc its planned
energy at boundaries, D and P prefix sums over slots of planned and spare charging energy
``eff * charge_kw * dt_h`` and ``eff * (charger_kw - charge_kw) * dt_h``, zero outside the
window):

- add: extra energy x charged in s lifts every later boundary by x until later charging is
  cut by as much, so ``x <= min over b > s of (battery_kwh - soc[b] + D[b]) - D[s+1]``, and
  ``x <= eff * (charger_kw - charge_kw[s]) * dt_h``.
- shed: energy e deferred from s is charged back as soon as spare power allows, so
  ``e <= min over b > s of (soc[b] - floor_kwh + P[b]) - P[s+1]`` (never below the floor),
  ``e <= soc[last] - end_kwh + P[last] - P[s+1]`` (the owner's departure energy, or the
  plan's end energy for a car staying past the horizon), and ``e <= eff * charge_kw[s] * dt_h``.
  Spare power in a slot is the car's charger headroom, capped by its site's spare charging
  power: ``cap + pv - charge`` (cap: grid limit and site DR caps), and no more than the
  headroom under a region DR cap.

A site turns its cars' extra or deferred charging into import change: extra charging first
soaks up PV surplus and import stays within the site's cap; deferred charging must also fit the
site's spare charging power summed over later slots (cars of one site share it). A region's DR
cap bounds the sum of its sites' import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.plan_arrays import FloatArray, PlanArrays


@dataclass(frozen=True)
class FlexibilityRows:
    """Per scope row and slot ``(R, N)``: powers [kW] and counts."""

    baseline_import_kw: FloatArray
    import_cap_kw: FloatArray
    add_power_kw: FloatArray
    shed_power_kw: FloatArray
    parked_vehicles: FloatArray
    compute_capacity_shards: FloatArray
    planned_shards: FloatArray

    @classmethod
    def stack(cls, parts: list[FlexibilityRows]) -> FlexibilityRows:
        """The rows of every part, one after another."""
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS})

    def sum_rows(self, members: list[int]) -> FlexibilityRows:
        """The rows `members` added up into one row."""
        return FlexibilityRows(
            **{name: getattr(self, name)[members].sum(axis=0, keepdims=True) for name in _FIELDS}
        )


_FIELDS = tuple(FlexibilityRows.__dataclass_fields__)


def _reverse_cummin(values: FloatArray) -> FloatArray:
    """``out[:, b] = min(values[:, b:])``."""
    return np.minimum.accumulate(values[:, ::-1], axis=1)[:, ::-1]


def _prefix(values: FloatArray) -> FloatArray:
    """``out[:, b] = sum(values[:, :b])``, with N+1 columns."""
    return np.concatenate([np.zeros((values.shape[0], 1)), np.cumsum(values, axis=1)], axis=1)


def vehicle_add_kw(a: PlanArrays) -> FloatArray:
    """Extra grid power each car can draw in each slot [kW] ``(V, N)``."""
    eff_dt = a.efficiency_frac[:, None] * a.horizon.dt_h
    planned = _prefix(a.charge_kw * eff_dt)
    room = np.where(np.isnan(a.soc_kwh), np.inf, a.battery_kwh[:, None] - a.soc_kwh + planned)
    energy = _reverse_cummin(room)[:, 1:] - planned[:, 1:]
    power = np.minimum(a.charger_kw[:, None] - a.charge_kw, energy / eff_dt)
    return np.where(a.usable, np.clip(power, 0.0, None), 0.0)


def site_spare_kw(a: PlanArrays) -> FloatArray:
    """Extra charging power each site could take in each slot [kW] ``(S, N)``."""
    charge = a.by_site(a.charge_kw)
    spare = np.maximum(0.0, a.cap_kw + a.pv_kw - charge)
    surplus_pv = np.maximum(0.0, a.pv_kw - charge)
    regions = np.array(a.site_regions)
    for region, cap in a.region_cap_kw.items():
        members = regions == region
        headroom = np.maximum(0.0, cap - a.import_kw[members].sum(axis=0))
        spare[members] = np.minimum(spare[members], headroom + surplus_pv[members])
    return spare


def vehicle_shed_kw(a: PlanArrays, site_spare: FloatArray) -> FloatArray:
    """Planned grid power each car can defer out of each slot [kW] ``(V, N)``."""
    eff_dt = a.efficiency_frac[:, None] * a.horizon.dt_h
    headroom = np.minimum(a.charger_kw[:, None] - a.charge_kw, site_spare[a.site_of_vehicle])
    spare = _prefix(np.where(a.usable, headroom * eff_dt, 0.0))
    above_floor = np.where(np.isnan(a.soc_kwh), np.inf, a.soc_kwh - a.floor_kwh[:, None] + spare)
    by_floor = _reverse_cummin(above_floor)[:, 1:] - spare[:, 1:]
    rows = np.arange(len(a.vehicle_ids))
    soc_last = a.soc_kwh[rows, a.last_boundary]
    end_slack = soc_last - a.end_kwh + spare[rows, a.last_boundary]
    by_target = end_slack[:, None] - spare[:, 1:]
    energy = np.minimum(np.minimum(by_floor, by_target), a.charge_kw * eff_dt)
    return np.where(a.usable, np.clip(np.nan_to_num(energy), 0.0, None) / eff_dt, 0.0)


def site_flexibility(a: PlanArrays) -> FlexibilityRows:
    """One row per site, in scenario order."""
    charge = a.by_site(a.charge_kw)
    spare = site_spare_kw(a)
    extra = a.by_site(vehicle_add_kw(a))
    deferrable = a.by_site(vehicle_shed_kw(a, spare))
    later_spare = np.cumsum(spare[:, ::-1], axis=1)[:, ::-1] - spare
    raised = np.minimum(a.cap_kw, np.maximum(0.0, charge + extra - a.pv_kw))
    lowered = np.maximum(0.0, charge - np.minimum(deferrable, later_spare) - a.pv_kw)
    return FlexibilityRows(
        baseline_import_kw=a.import_kw,
        import_cap_kw=a.cap_kw,
        add_power_kw=np.maximum(0.0, raised - a.import_kw),
        shed_power_kw=np.maximum(0.0, a.import_kw - lowered),
        parked_vehicles=a.by_site(a.usable.astype(float)),
        compute_capacity_shards=a.by_site(a.usable * a.compute_shards[:, None]),
        planned_shards=a.by_site(a.shards),
    )


def region_flexibility(a: PlanArrays, sites: FlexibilityRows, region: str) -> FlexibilityRows:
    """A region's sites added up, with its DR caps bounding import and extra import."""
    members = [i for i, r in enumerate(a.site_regions) if r == region]
    total = sites.sum_rows(members)
    cap = a.region_cap_kw[region][None, :]
    headroom = np.maximum(0.0, cap - total.baseline_import_kw)
    return FlexibilityRows(
        baseline_import_kw=total.baseline_import_kw,
        import_cap_kw=np.minimum(total.import_cap_kw, cap),
        add_power_kw=np.minimum(total.add_power_kw, headroom),
        shed_power_kw=total.shed_power_kw,
        parked_vehicles=total.parked_vehicles,
        compute_capacity_shards=total.compute_capacity_shards,
        planned_shards=total.planned_shards,
    )
