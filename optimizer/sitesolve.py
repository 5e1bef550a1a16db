"""One site group's model, solved on its own (in a worker process when sites run in parallel).

A group is the sites a region DR cap couples (usually one site). Its LP gives the
state-of-charge duals the fleet bound needs; when its running flags are fractional it is
solved again as a MILP, and if that finds nothing in time, the fractional flags are dropped
(set to 0) and the LP re-solved, which is always feasible: running less only leaves more
energy in the batteries and charging can be lowered to match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.aggregate import AggregateModel, Demand, RegionCap, build_aggregate_model
from optimizer.fleetdata import FleetArrays
from optimizer.highsrun import run_highs
from optimizer.plan import SolveStatus

INTEGRAL_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SiteTask:
    """A group's vehicles and sites (a fleet subset), its share of work and its caps."""

    fleet: FleetArrays
    demands: tuple[Demand, ...]
    region_caps: tuple[RegionCap, ...]
    time_limit_s: float
    mip_gap_frac: float
    mip_gap_abs: float


@dataclass(frozen=True)
class SiteResult:
    """A group's schedule per pair, its cost without undone work [currency], the LP's
    state-of-charge duals per pair, and how many fractional flags were dropped."""

    status: SolveStatus
    charge_kw: np.ndarray
    running: np.ndarray
    energy_cost: float
    soc_duals: np.ndarray
    dropped: int


def solve_site(task: SiteTask) -> SiteResult:
    """The group's schedule; status ``infeasible`` or ``error`` (no schedule in time) with
    empty arrays otherwise."""
    model = build_aggregate_model(task.fleet, task.demands, task.region_caps)
    relaxed = run_highs(model.lp, time_limit_s=task.time_limit_s)
    pairs = model.soc_rows
    if relaxed.values is None:
        return _nothing(relaxed.status, pairs)
    # any multipliers give a valid bound; without duals (a limit stopped the LP) use zeros
    duals = np.zeros(pairs) if relaxed.row_duals is None else relaxed.row_duals[:pairs]
    runs = model.running_col >= 0
    flags = relaxed.values[model.running_col[runs]]
    fractional = np.abs(flags - np.rint(flags)) > INTEGRAL_TOLERANCE
    outcome, dropped = relaxed, 0
    if fractional.any():
        milp = build_aggregate_model(task.fleet, task.demands, task.region_caps, integer=True)
        found = run_highs(
            milp.lp,
            time_limit_s=task.time_limit_s,
            mip_gap_frac=task.mip_gap_frac,
            mip_gap_abs=task.mip_gap_abs,
        )
        if found.values is not None:
            outcome, model = found, milp
        else:
            upper = np.array(model.lp.col_upper_)
            upper[model.running_col[runs][fractional]] = 0.0
            model.lp.col_upper_ = upper
            outcome = run_highs(model.lp, time_limit_s=task.time_limit_s)
            dropped = int(fractional.sum())
    if outcome.values is None:
        return _nothing(outcome.status, pairs)
    return _result(model, outcome.status, outcome.values, duals, dropped)


def _nothing(status: SolveStatus, pairs: int) -> SiteResult:
    empty = np.zeros(pairs)
    return SiteResult(status, empty, empty.astype(np.int64), 0.0, empty, 0)


def _result(
    model: AggregateModel, status: SolveStatus, x: np.ndarray, duals: np.ndarray, dropped: int
) -> SiteResult:
    pairs = model.soc_rows
    charge = np.zeros(pairs)
    has = model.charge_col >= 0
    charge[has] = np.maximum(x[model.charge_col[has]], 0.0)
    running = np.zeros(pairs, dtype=np.int64)
    runs = model.running_col >= 0
    running[runs] = np.rint(x[model.running_col[runs]]).astype(np.int64)
    cost = np.asarray(model.lp.col_cost_)
    undone = np.concatenate(model.undone_col) if model.undone_col else np.zeros(0, np.int64)
    energy = float(np.dot(cost, x) - np.dot(cost[undone], x[undone]))
    return SiteResult(status, charge, running, energy, duals, dropped)
