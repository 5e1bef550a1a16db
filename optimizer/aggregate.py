"""The aggregated planning model, built with highspy from numpy arrays (the fast path).

It is the reference formulation (``optimizer.formulation``) with work aggregated: charge
``c[v,s]``, running ``r[v,s]``, state of charge ``e[v,b]``, deficit ``d[v]`` and import
``g[i,s]`` per vehicle and site as there, but no per-vehicle job variables. Work of a demand
(a job class, or a site's share of work in one slot) is ``Y[k,s]``, executions in slot ``s``,
placed against spare shard capacity ``K[i,s] = Σ_{v at i} shards_per_slot · r[v,s]`` through
the rows of a laminar residency family (``optimizer.jobclasses``); a demand whose sites cross
the family keeps per-site work ``y[k,i,s]``. Work left undone is priced per segment.

Dropping per-vehicle job variables drops rule 7's "at most ``shards`` of a job per vehicle"
and the per-slot ``min(shards_per_slot, shards)`` bound, so with job classes as demands the
model is a relaxation of the reference MILP and its LP optimum a valid lower bound.

Rows ``0 .. len(pairs)-1`` are the state-of-charge balances of the usable pairs, in pair
order (``optimizer.lagrange`` dualises them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np

from optimizer.fleetdata import FleetArrays
from optimizer.jobclasses import ResidencyFamily, residency_family

INF = highspy.kHighsInf


@dataclass(frozen=True)
class Demand:
    """Work allowed in slots ``first..last-1`` at site indices ``sites``: ``amounts[k]``
    executions [count] of segment ``k``, each left undone costing ``values[k]`` [currency]."""

    first: int
    last: int
    sites: frozenset[int]
    amounts: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class RegionCap:
    """A cap on the summed import of site indices ``sites`` in ``slot`` [kW]."""

    sites: tuple[int, ...]
    slot: int
    max_import_kw: float


class Columns:
    """Variables collected block by block: bounds, costs and integrality."""

    def __init__(self) -> None:
        self.count = 0
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.cost: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []

    def add(
        self,
        size: int,
        lower: np.ndarray | float,
        upper: np.ndarray | float,
        cost: np.ndarray | float,
        integer: bool = False,
    ) -> np.ndarray:
        """Add ``size`` variables; returns their column indices."""
        start = self.count
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (size,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (size,)))
        self.cost.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), (size,)))
        self.integer.append(np.full(size, integer))
        self.count += size
        return np.arange(start, start + size)


class Rows:
    """Constraint rows: bounds reserved block by block, terms collected as triplets."""

    def __init__(self) -> None:
        self.count = 0
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []

    def add(self, lower: np.ndarray | float, upper: np.ndarray | float, size: int) -> np.ndarray:
        """Reserve ``size`` rows ``lower <= a x <= upper``; returns their indices."""
        start = self.count
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (size,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (size,)))
        self.count += size
        return np.arange(start, start + size)

    def terms(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | float) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        self.rows.append(rows)
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.vals.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), rows.shape))


@dataclass(frozen=True)
class Work:
    """A demand's work variables: slot, site (-1 for laminar work, placed later) and column."""

    slots: np.ndarray
    sites: np.ndarray
    cols: np.ndarray


@dataclass
class AggregateModel:
    """A built model and where its variables sit (-1: no variable)."""

    lp: highspy.HighsLp
    charge_col: np.ndarray  # per pair
    running_col: np.ndarray  # per pair
    undone_col: list[np.ndarray]  # per demand: one per segment
    soc_rows: int  # rows 0 .. soc_rows-1 are the state-of-charge balances


def running_pairs(fleet: FleetArrays, demands: Sequence[Demand]) -> np.ndarray:
    """Pairs with a running flag: the vehicle may compute and some demand may use the slot
    at its site."""
    runnable = np.zeros(fleet.pv_kw.shape, dtype=bool)
    for demand in demands:
        runnable[np.ix_(sorted(demand.sites), range(demand.first, demand.last))] = True
    pv_ = fleet.pair_vehicle
    return fleet.can_compute[pv_] & runnable[fleet.site[pv_], fleet.pair_slot]


def build_aggregate_model(
    fleet: FleetArrays,
    demands: Sequence[Demand],
    region_caps: Sequence[RegionCap] = (),
    *,
    integer: bool = False,
) -> AggregateModel:
    """The aggregated model of every vehicle and site of ``fleet`` with ``demands``.

    With ``integer`` the running flags are binary (a MILP; work then fits in integral
    capacity); otherwise it is the LP relaxation.
    """
    n_sites, n = fleet.pv_kw.shape
    cols, rows = Columns(), Rows()
    pv_, ps = fleet.pair_vehicle, fleet.pair_slot
    pi = fleet.site[pv_]
    pairs = len(pv_)
    is_first = ps == fleet.first[pv_]
    is_last = ps == fleet.last[pv_] - 1

    # rule 3: e[b+1] - e[b] - eff c dt + compute r dt = soc_kwh at the first pair, else 0.
    # Reserved first, so that the balances are rows 0 .. pairs-1.
    rhs = np.where(is_first, fleet.soc_kwh[pv_], 0.0)
    balance = rows.add(rhs, rhs, pairs)

    # columns: charge c, running r, state of charge e (rules 2 and 4, rule 5 on e[last])
    dt_h = fleet.dt_h
    eff = fleet.efficiency_frac[pv_]
    wear = fleet.wear_cost_per_kwh[pv_]
    compute = fleet.compute_kw[pv_]
    charging = fleet.charger_kw[pv_] > 0
    charge_col = np.full(pairs, -1)
    charge_col[charging] = cols.add(
        int(charging.sum()), 0.0, fleet.charger_kw[pv_][charging], (wear * eff * dt_h)[charging]
    )
    can_run = running_pairs(fleet, demands)
    running_col = np.full(pairs, -1)
    running_col[can_run] = cols.add(
        int(can_run.sum()), 0.0, 1.0, (wear * compute * dt_h)[can_run], integer
    )
    required = fleet.required_kwh[pv_]
    soc_lower = fleet.floor_kwh[pv_].copy()
    owes = is_last & ~np.isnan(required)
    soc_lower[owes] = np.maximum(soc_lower[owes], required[owes])
    soc_col = cols.add(pairs, soc_lower, fleet.battery_kwh[pv_], 0.0)

    index = np.arange(pairs)
    rows.terms(balance, soc_col, 1.0)
    later = index[~is_first]
    rows.terms(balance[later], soc_col[later - 1], -1.0)
    rows.terms(balance[charging], charge_col[charging], -(eff * dt_h)[charging])
    draws = can_run & (compute > 0)
    rows.terms(balance[draws], running_col[draws], (compute * dt_h)[draws])

    # deficit d >= soc_kwh - e[last] for vehicles that can run (the others never drain);
    # d <= soc_kwh - floor keeps it bounded when its valuation is negative
    runner = np.zeros(len(fleet.vehicle_ids), dtype=bool)
    runner[pv_[can_run]] = True
    lasts = np.flatnonzero(is_last & runner[pv_])
    dv = pv_[lasts]
    drain_kwh = np.maximum(fleet.soc_kwh[dv] - fleet.floor_kwh[dv], 0.0)
    deficit_col = cols.add(len(dv), 0.0, drain_kwh, fleet.deficit_cost_per_kwh[dv])
    deficit_row = rows.add(fleet.soc_kwh[dv], INF, len(dv))
    rows.terms(deficit_row, deficit_col, 1.0)
    rows.terms(deficit_row, soc_col[lasts], 1.0)

    # rule 8: g[i,s] >= Σ charge at i in s - pv, 0 <= g <= cap; an equality where import
    # pays (negative cost) and there is no PV, so that import is never inflated
    has_load = np.zeros((n_sites, n), dtype=bool)
    has_load[pi[charging], ps[charging]] = True
    gi, gs = np.nonzero(has_load)
    cost = fleet.import_cost_per_kwh[gi, gs]
    pv = fleet.pv_kw[gi, gs]
    import_col = np.full((n_sites, n), -1)
    import_col[gi, gs] = cols.add(len(gi), 0.0, fleet.site_cap_kw[gi, gs], cost * dt_h)
    import_row = np.full((n_sites, n), -1)
    import_row[gi, gs] = rows.add(-pv, np.where((cost < 0) & (pv <= 0), -pv, INF), len(gi))
    rows.terms(import_row[gi, gs], import_col[gi, gs], 1.0)
    rows.terms(import_row[pi[charging], ps[charging]], charge_col[charging], -1.0)
    for cap in region_caps:
        members = import_col[list(cap.sites), cap.slot]
        members = members[members >= 0]
        if len(members):
            rows.terms(np.full(len(members), rows.add(-INF, cap.max_import_kw, 1)[0]), members, 1.0)

    _work, undone_col, _family = define_work(
        cols,
        rows,
        (n_sites, n),
        demands,
        pi[can_run],
        ps[can_run],
        running_col[can_run],
        fleet.shards_per_slot[pv_][can_run].astype(np.float64),
        np.ones(int(can_run.sum())),
    )
    return AggregateModel(
        lp=to_lp(cols, rows),
        charge_col=charge_col,
        running_col=running_col,
        undone_col=undone_col,
        soc_rows=pairs,
    )


def define_work(
    cols: Columns,
    rows: Rows,
    shape: tuple[int, int],
    demands: Sequence[Demand],
    run_site: np.ndarray,
    run_slot: np.ndarray,
    run_col: np.ndarray,
    run_shards: np.ndarray,
    run_upper: np.ndarray,
) -> tuple[list[Work], list[np.ndarray], ResidencyFamily]:
    """The work layer over running columns ``run_col`` (at ``run_site``, ``run_slot``, giving
    ``run_shards`` shards each): spare capacity rows
    ``K[i,s] + Σ explicit y[k,i,s] - Σ shards · r <= 0``, work and undone variables, each
    demand's balance ``Σ work + Σ undone = Σ amounts``, and the residency family's rows
    ``Σ_{k: sites(k) ⊆ S} Y[k,s] - Σ_{i ∈ S} K[i,s] <= 0``. ``shape``: (sites, slots);
    ``run_upper``: the running columns' upper bounds. Every column gets a finite upper bound
    (one the rows imply), so that ``highsrun.dual_bound`` applies."""
    spare_col = np.full(shape, -1)
    spare_at = np.full(shape, -1)
    has_run = np.zeros(shape, dtype=bool)
    has_run[run_site, run_slot] = True
    most = np.zeros(shape)
    np.add.at(most, (run_site, run_slot), run_shards * run_upper)
    ki, ks = np.nonzero(has_run)
    spare_col[ki, ks] = cols.add(len(ki), 0.0, most[ki, ks], 0.0)
    spare_at[ki, ks] = rows.add(-INF, 0.0, len(ki))
    rows.terms(spare_at[ki, ks], spare_col[ki, ks], 1.0)
    rows.terms(spare_at[run_site, run_slot], run_col, -run_shards)
    family = residency_family([(d.sites, float(d.amounts.sum())) for d in demands], shape[0])
    family_terms: list[tuple[int, int, int]] = []  # (family set, slot, work column)
    work, undone_col = [], []
    for demand in demands:
        total = float(demand.amounts.sum())
        members = np.array(sorted(demand.sites), dtype=np.int64)
        window = np.arange(demand.first, demand.last)
        present = has_run[np.ix_(members, window)]  # members x slots
        if demand.sites in family.explicit:
            mi, si = np.nonzero(present)
            placed = Work(window[si], members[mi], cols.add(len(mi), 0.0, total, 0.0))
            rows.terms(spare_at[placed.sites, placed.slots], placed.cols, 1.0)
        else:
            live = window[present.any(axis=0)]
            placed = Work(live, np.full(len(live), -1), cols.add(len(live), 0.0, total, 0.0))
            family_terms.extend(
                (a, int(s), int(col))
                for s, col in zip(live, placed.cols, strict=True)
                for a in family.ancestors[demand.sites]
            )
        undone = cols.add(len(demand.amounts), 0.0, demand.amounts, demand.values)
        row = rows.add(total, total, 1)[0]
        rows.terms(np.full(len(placed.cols), row), placed.cols, 1.0)
        rows.terms(np.full(len(undone), row), undone, 1.0)
        work.append(placed)
        undone_col.append(undone)
    keys = sorted({(a, s) for a, s, _ in family_terms})
    position = dict(zip(keys, rows.add(-INF, 0.0, len(keys)), strict=True))
    rows.terms(
        np.array([position[(a, s)] for a, s, _ in family_terms], dtype=np.int64),
        np.array([col for _, _, col in family_terms], dtype=np.int64),
        1.0,
    )
    for (a, s), row in position.items():
        spare = spare_col[sorted(family.sets[a]), s]
        spare = spare[spare >= 0]
        rows.terms(np.full(len(spare), row), spare, -1.0)
    return work, undone_col, family


def to_lp(cols: Columns, rows: Rows) -> highspy.HighsLp:
    """The model as a row-wise ``HighsLp``."""

    def joined(parts: list[np.ndarray], dtype: type = np.float64) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    row = joined(rows.rows, np.int64)
    order = np.argsort(row, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=rows.count))])
    lp = highspy.HighsLp()
    lp.num_col_ = cols.count
    lp.num_row_ = rows.count
    lp.col_cost_ = joined(cols.cost)
    lp.col_lower_ = joined(cols.lower)
    lp.col_upper_ = joined(cols.upper)
    lp.row_lower_ = joined(rows.lower)
    lp.row_upper_ = joined(rows.upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_ = cols.count
    lp.a_matrix_.num_row_ = rows.count
    lp.a_matrix_.start_ = starts.astype(np.int32)
    lp.a_matrix_.index_ = joined(rows.cols, np.int64)[order].astype(np.int32)
    lp.a_matrix_.value_ = joined(rows.vals)[order]
    integer = joined(cols.integer, np.bool_)
    if integer.any():
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
            for flag in integer
        ]
    return lp
