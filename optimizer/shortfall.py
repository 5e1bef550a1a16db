"""The least departure shortfall a scenario allows, spread fairly (contract v2, objective 1).

Compute only lowers a battery's energy, so the least total shortfall is that of charging
alone: a linear programme over the charge power ``c[v,s]`` of every vehicle that owes energy
in this horizon (``need_v = required_kwh - soc_kwh > 0``), with ``dt_h`` the slot length and
``eff_v`` its charge efficiency:

- ``eff_v * dt_h * Σ_s c[v,s] + short_v >= need_v``, ``0 <= c[v,s] <= charger_kw`` in usable
  slots, ``0 <= short_v <= need_v``;
- per site and slot ``Σ_v c[v,s] - imp[site,s] <= pv_kw[s]`` with
  ``0 <= imp[site,s] <= min(grid_limit_kw, site DR caps)`` (rule 8);
- per region DR cap and slot ``Σ_sites imp[site,s] <= max_import_kw``.

Stage 1 minimises ``S = Σ short_v``. Stage 2 spreads it: the smallest largest share
``t = max_v short_v / need_v`` with ``Σ short_v <= S`` (the contract's advice). The MILP then
plans with each short vehicle's target lowered by its share (``relaxed_targets``), so its
total shortfall is the least possible and no cost buys an owner's energy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from optimizer.aggregate import Columns, Rows, to_lp
from optimizer.energy import SHORTFALL_TOLERANCE_KWH
from optimizer.errors import SolveError
from optimizer.highsrun import run_highs
from optimizer.plan import SolveStatus
from optimizer.problem import Scenario, Vehicle

#: Slack given to the solver's rows [kWh].
TOLERANCE_KWH = 1e-6
#: Shortfall below this is none [kWh] (a tenth of a watt-hour): tolerance, not an owner's energy.
MIN_SHORTFALL_KWH = SHORTFALL_TOLERANCE_KWH
#: Seconds either linear programme may take; they are small (charging alone).
TIME_LIMIT_S = 60.0


@dataclass(frozen=True)
class Shortfall:
    """The least shortfall per vehicle that owes one [kWh]; what limits it, by vehicle."""

    by_vehicle: dict[str, float]
    total_kwh: float

    @property
    def any(self) -> bool:
        return self.total_kwh > MIN_SHORTFALL_KWH


@dataclass(frozen=True)
class _Charging:
    """The charging-only LP: its columns, rows and the short columns of the owing vehicles."""

    cols: Columns
    rows: Rows
    owing: list[str]
    need_kwh: np.ndarray
    short: np.ndarray


def _charging_lp(scenario: Scenario, *, with_dr: bool = True) -> _Charging:
    horizon = scenario.horizon
    n = horizon.slots
    cols, rows = Columns(), Rows()
    owing: list[str] = []
    needs: list[float] = []
    shorts: list[int] = []
    charge_at: dict[tuple[str, int], list[int]] = {}
    for v in scenario.vehicles:
        required = scenario.required_departure_kwh(v)
        if required is None or required - v.soc_kwh <= TOLERANCE_KWH:
            continue
        need = required - v.soc_kwh
        slots = np.array(scenario.window(v).slots, dtype=np.int64)
        charge = cols.add(len(slots), 0.0, v.charger_kw, 0.0)
        short = cols.add(1, 0.0, need, 1.0)
        row = rows.add(need, np.inf, 1)
        rows.terms(np.full(len(slots), row[0]), charge, v.charge_efficiency_frac * horizon.dt_h)
        rows.terms(row, short, 1.0)
        for s, col in zip(slots.tolist(), charge.tolist(), strict=True):
            charge_at.setdefault((v.site, s), []).append(col)
        owing.append(v.id)
        needs.append(need)
        shorts.append(int(short[0]))
    region_caps = scenario.region_caps() if with_dr else []
    capped_regions = {event.region for event, _ in region_caps}
    imports: dict[tuple[str, int], int] = {}
    for site in scenario.sites:
        caps = scenario.site_cap_kw(site) if with_dr else [site.grid_limit_kw] * n
        for s in range(n):
            members = charge_at.get((site.id, s))
            if not members:
                continue
            if site.region in capped_regions:
                imp = int(cols.add(1, 0.0, caps[s], 0.0)[0])
                imports[(site.id, s)] = imp
                row = rows.add(-np.inf, site.pv_kw[s], 1)
                rows.terms(row, np.array([imp]), -1.0)
            else:
                row = rows.add(-np.inf, caps[s] + site.pv_kw[s], 1)
            rows.terms(np.full(len(members), row[0]), np.array(members), 1.0)
    for event, capped in region_caps:
        region_sites = [site.id for site in scenario.sites_in_region(event.region or "")]
        for s in capped:
            imp_cols = [imports[(sid, s)] for sid in region_sites if (sid, s) in imports]
            if imp_cols:
                row = rows.add(-np.inf, event.max_import_kw, 1)
                rows.terms(np.full(len(imp_cols), row[0]), np.array(imp_cols), 1.0)
    return _Charging(cols, rows, owing, np.array(needs), np.array(shorts, dtype=np.int64))


def _solve(cols: Columns, rows: Rows) -> np.ndarray:
    outcome = run_highs(to_lp(cols, rows), time_limit_s=TIME_LIMIT_S)
    if outcome.status is not SolveStatus.optimal or outcome.values is None:
        raise SolveError(f"the least-shortfall programme ended {outcome.status.value}")
    return outcome.values


def site_groups(scenario: Scenario, *, with_dr: bool = True) -> list[Scenario]:
    """The scenario split into parts that share nothing in these programmes: one per site, or
    per region whose sites a region DR cap ties together; each with its cars and caps."""
    capped = {event.region for event in scenario.dr_events if event.region} if with_dr else set()
    keys: dict[str, str] = {
        site.id: f"region:{site.region}" if site.region in capped else f"site:{site.id}"
        for site in scenario.sites
    }
    if len(set(keys.values())) <= 1:
        return [scenario]
    vehicles: dict[str, list[Vehicle]] = {}
    for v in scenario.vehicles:
        vehicles.setdefault(keys[v.site], []).append(v)
    parts = []
    for key in sorted(set(keys.values())):
        sites = tuple(site for site in scenario.sites if keys[site.id] == key)
        ids = {site.id for site in sites}
        regions = {site.region for site in sites}
        parts.append(
            replace(
                scenario,
                sites=sites,
                vehicles=tuple(vehicles.get(key, ())),
                jobs=(),
                dr_events=tuple(
                    e for e in scenario.dr_events if e.site in ids or e.region in regions
                ),
            )
        )
    return parts


def least_total_shortfall_kwh(scenario: Scenario, *, with_dr: bool = True) -> float:
    """The least total departure shortfall any plan of ``scenario`` can have [kWh]."""
    total = sum(_stage_one(part, with_dr)[1] for part in site_groups(scenario, with_dr=with_dr))
    return total if total > MIN_SHORTFALL_KWH else 0.0


def least_shortfall(scenario: Scenario) -> Shortfall:
    """The least total shortfall, spread so that the largest share of a need is smallest
    (within each site group: groups share nothing, so each is as fair as it can be)."""
    by_vehicle: dict[str, float] = {}
    for part in site_groups(scenario):
        by_vehicle.update(_least_in_group(part))
    return Shortfall(by_vehicle, float(sum(by_vehicle.values())))


def _stage_one(scenario: Scenario, with_dr: bool = True) -> tuple[_Charging, float]:
    """One site group's charging LP and its least total shortfall [kWh]."""
    lp = _charging_lp(scenario, with_dr=with_dr)
    if not lp.owing:
        return lp, 0.0
    return lp, float(_solve(lp.cols, lp.rows)[lp.short].sum())


def _least_in_group(scenario: Scenario) -> dict[str, float]:
    lp, total = _stage_one(scenario)
    if total <= MIN_SHORTFALL_KWH:
        return {}
    # Stage 2: the same rows, Σ short <= S, short_v <= t * need_v, minimise t.
    cols, rows = lp.cols, lp.rows
    cols.cost = [np.zeros(len(part)) for part in cols.cost]
    share = cols.add(1, 0.0, 1.0, 1.0)
    cap = rows.add(-np.inf, total + TOLERANCE_KWH, 1)
    rows.terms(np.full(len(lp.short), cap[0]), lp.short, 1.0)
    spread = rows.add(-np.inf, 0.0, len(lp.short))
    rows.terms(spread, lp.short, 1.0)
    rows.terms(spread, np.full(len(lp.short), share[0]), -lp.need_kwh)
    shorts = _solve(cols, rows)[lp.short]
    return {vid: float(x) for vid, x in zip(lp.owing, shorts, strict=True) if x > MIN_SHORTFALL_KWH}


def relaxed_targets(
    scenario: Scenario, shortfall: Shortfall, margin_kwh: float = TOLERANCE_KWH
) -> Scenario:
    """``scenario`` with each short vehicle's target lowered by its share of the shortfall
    and `margin_kwh` more (so that solver tolerances cannot make them infeasible)."""
    if not shortfall.any:
        return scenario
    vehicles = []
    for v in scenario.vehicles:
        short = shortfall.by_vehicle.get(v.id, 0.0)
        required = scenario.required_departure_kwh(v)
        if short > 0 and required is not None:
            target = max(v.soc_kwh, required - short - margin_kwh)
            v = replace(v, target_kwh=target)
        vehicles.append(v)
    return replace(scenario, vehicles=tuple(vehicles))
