"""The energy part of the fleet bound, in closed form.

The aggregated model (``optimizer.aggregate``) with its state-of-charge rows dualised at
multipliers ``nu`` (one per usable pair) falls apart: charge, state of charge, deficit and
import no longer share a row with running or work, and what is left of them separates by
(site, slot) and by vehicle. In HiGHS's sign convention (reduced cost = cost - Aᵀnu), with
``η`` the charge efficiency and ``Δ`` the slot length [h]:

* charge ``c[p]`` costs ``wear·η·Δ + η·Δ·nu[p]``; at each (site, slot) the charging units,
  cheapest first, are free up to the PV output and cost the import price beyond it, up to
  the import cap (a continuous knapsack); with a negative import price and PV the import
  sits at its cap;
* state of charge ``e[p]`` costs ``nu[p+1] - nu[p]`` (``-nu[p]`` at a vehicle's last pair) and
  sits at a bound, except at the last pair of a vehicle that may run, where it trades
  against the deficit ``d >= soc_kwh - e``, ``0 <= d <= soc_kwh - floor``;
* the constant is ``Σ nu[first pair] · soc_kwh``.

Region DR caps are dropped here (a relaxation, so the bound stays valid); the site groups
still obey them.
"""

from __future__ import annotations

import numpy as np

from optimizer.fleetdata import FleetArrays


def energy_bound(fleet: FleetArrays, runner: np.ndarray, nu: np.ndarray) -> float:
    """``min`` of the energy terms of the relaxed model plus ``nuᵀb`` [currency].

    ``runner``: per vehicle, whether it has a running flag (and so a deficit variable)."""
    pv_, ps = fleet.pair_vehicle, fleet.pair_slot
    is_first = ps == fleet.first[pv_]
    is_last = ps == fleet.last[pv_] - 1
    constant = float(np.dot(nu[is_first], fleet.soc_kwh[pv_[is_first]]))
    return constant + _charging(fleet, nu) + _levels(fleet, runner, nu, is_last)


def _charging(fleet: FleetArrays, nu: np.ndarray) -> float:
    """The (site, slot) knapsacks of charge and import."""
    pv_ = fleet.pair_vehicle
    charging = np.flatnonzero(fleet.charger_kw[pv_] > 0)
    if len(charging) == 0:
        return 0.0
    v = pv_[charging]
    step = fleet.efficiency_frac[v] * fleet.dt_h
    unit = fleet.wear_cost_per_kwh[v] * step + step * nu[charging]  # per kW of charge
    site, slot = fleet.site[v], fleet.pair_slot[charging]
    order = np.lexsort((unit, slot, site))
    site, slot, unit = site[order], slot[order], unit[order]
    size = fleet.charger_kw[v][order]
    group_start = np.flatnonzero(np.r_[True, (site[1:] != site[:-1]) | (slot[1:] != slot[:-1])])
    group = np.cumsum(np.r_[True, (site[1:] != site[:-1]) | (slot[1:] != slot[:-1])]) - 1
    total = np.cumsum(size)
    offset = np.r_[0.0, total[:-1]][group_start][group]
    upto = total - offset  # cumulative size within the (site, slot) group, this item included
    before = upto - size
    gs, gt = site[group_start], slot[group_start]
    price = (fleet.import_cost_per_kwh[gs, gt] * fleet.dt_h)[group]  # per kW of import
    pv = fleet.pv_kw[gs, gt][group]
    cap = fleet.site_cap_kw[gs, gt][group]
    in_pv = np.clip(np.minimum(upto, pv) - before, 0.0, None)
    in_grid = np.clip(np.minimum(upto, pv + cap) - np.maximum(before, pv), 0.0, None)
    pinned = price < 0  # importing pays: import sits at its cap (pv > 0) or equals the load
    value = np.where(
        pinned & (pv > 0),
        np.minimum(unit, 0.0) * (in_pv + in_grid),
        np.minimum(unit, 0.0) * in_pv + np.minimum(unit + price, 0.0) * in_grid,
    ).sum()
    pinned_groups = (fleet.import_cost_per_kwh[gs, gt] < 0) & (fleet.pv_kw[gs, gt] > 0)
    value += float(
        (fleet.import_cost_per_kwh[gs, gt] * fleet.dt_h * fleet.site_cap_kw[gs, gt])[
            pinned_groups
        ].sum()
    )
    return float(value)


def _levels(fleet: FleetArrays, runner: np.ndarray, nu: np.ndarray, is_last: np.ndarray) -> float:
    """State of charge at its bounds, traded against the deficit at runners' last pairs."""
    pv_ = fleet.pair_vehicle
    following = np.r_[nu[1:], 0.0]
    slope = np.where(is_last, 0.0, following) - nu
    lower = fleet.floor_kwh[pv_].copy()
    required = fleet.required_kwh[pv_]
    owes = is_last & ~np.isnan(required)
    lower[owes] = np.maximum(lower[owes], required[owes])
    upper = fleet.battery_kwh[pv_]
    at_bound = np.minimum(slope * lower, slope * upper)
    joint = is_last & runner[pv_]
    value = float(at_bound[~joint].sum())
    v = pv_[joint]
    soc, price = fleet.soc_kwh[v], fleet.deficit_cost_per_kwh[v]
    lo, hi, a = lower[joint], upper[joint], slope[joint]
    drain = np.maximum(soc - fleet.floor_kwh[v], 0.0)
    candidates = np.stack([lo, hi, np.clip(soc, lo, hi)])
    with_deficit = a * candidates + price * np.maximum(soc - candidates, 0.0)
    value += float(
        np.where(
            price >= 0, with_deficit.min(axis=0), price * drain + np.minimum(a * lo, a * hi)
        ).sum()
    )
    return value
