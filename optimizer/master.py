"""The fleet master: where work runs, with running priced by the batteries' energy values.

With the state-of-charge rows of the aggregated model dualised at ``nu``, running flag
``r[p]`` costs ``wear·compute·Δ - compute·Δ·nu[p]`` [currency] and meets charge only through
``nu``; what remains of the work side is a transportation LP from running capacity to job
classes. Running flags of one (site, slot) with equal cost and shards per slot are
interchangeable, so they become one column bounded by their count. The LP's optimum plus
the closed-form energy part (``optimizer.energybound``) is ``L(nu)``, a valid lower bound of
the full problem; its solution is the fleet's job allocation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optimizer.aggregate import Columns, Demand, Rows, Work, define_work, to_lp
from optimizer.energybound import energy_bound
from optimizer.fleetdata import FleetArrays
from optimizer.highsrun import dual_bound, run_highs
from optimizer.jobclasses import ResidencyFamily


@dataclass(frozen=True)
class Allocation:
    """The master's answer: ``L(nu)`` [currency], shard capacity it runs per site and slot,
    and the executions of each demand's work variables."""

    bound: float
    capacity: np.ndarray  # sites x slots
    work: list[Work]
    amounts: list[np.ndarray]
    family: ResidencyFamily
    solve_s: float


def solve_master(
    fleet: FleetArrays,
    demands: Sequence[Demand],
    can_run: np.ndarray,
    nu: np.ndarray,
    time_limit_s: float,
) -> Allocation | None:
    """``L(nu)`` and the allocation; None if the LP is not solved to optimality in time.

    ``can_run``: per pair, whether it has a running flag (``aggregate.running_pairs``)."""
    runs = np.flatnonzero(can_run)
    v = fleet.pair_vehicle[runs]
    draw_kwh = fleet.compute_kw[v] * fleet.dt_h
    cost = (fleet.wear_cost_per_kwh[v] - nu[runs]) * draw_kwh
    keys = np.column_stack([fleet.site[v], fleet.pair_slot[runs], fleet.shards_per_slot[v], cost])
    merged, counts = np.unique(keys, axis=0, return_counts=True)
    site, slot = merged[:, 0].astype(np.int64), merged[:, 1].astype(np.int64)
    shards = merged[:, 2]
    cols, rows = Columns(), Rows()
    running = cols.add(len(merged), 0.0, counts.astype(np.float64), merged[:, 3])
    work, _undone, family = define_work(
        cols, rows, fleet.pv_kw.shape, demands, site, slot, running, shards, counts
    )
    lp = to_lp(cols, rows)
    outcome = run_highs(lp, time_limit_s=time_limit_s)
    if outcome.values is None or outcome.row_duals is None:
        return None
    x = outcome.values
    capacity = np.zeros(fleet.pv_kw.shape)
    np.add.at(capacity, (site, slot), np.rint(x[running]) * shards)
    runner = np.zeros(len(fleet.vehicle_ids), dtype=bool)
    runner[v] = True
    return Allocation(
        bound=dual_bound(lp, outcome.row_duals) + energy_bound(fleet, runner, nu),
        capacity=capacity,
        work=work,
        amounts=[np.maximum(x[w.cols], 0.0) for w in work],
        family=family,
        solve_s=outcome.solve_s,
    )
