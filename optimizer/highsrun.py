"""Run HiGHS (highspy) on a ``HighsLp`` and read the outcome as plain numpy arrays."""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from functools import cache

import highspy
import numpy as np

from optimizer.plan import SolveStatus

_BANNER_LOCK = threading.Lock()


@cache
def _banner_swallowed() -> bool:
    """HiGHS prints a banner to file descriptor 1 when the first solver of a process is made;
    make that one with descriptor 1 pointing at /dev/null, so plans written to stdout stay
    clean."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
    return True


def new_highs() -> highspy.Highs:
    """A silent single-threaded HiGHS."""
    with _BANNER_LOCK:
        _banner_swallowed()
    solver = highspy.Highs()
    solver.setOptionValue("output_flag", False)
    solver.setOptionValue("threads", 1)
    return solver


@dataclass(frozen=True)
class HighsOutcome:
    """What a run gave: status, incumbent objective and bound [currency], primal values and
    (LP only) row duals, in HiGHS's sign convention (reduced cost = cost - Aᵀ·dual)."""

    status: SolveStatus
    objective: float | None
    bound: float | None
    values: np.ndarray | None
    row_duals: np.ndarray | None
    solve_s: float


def run_highs(
    lp: highspy.HighsLp,
    *,
    time_limit_s: float,
    mip_gap_frac: float = 1e-4,
    mip_gap_abs: float = 1e-2,
) -> HighsOutcome:
    """Solve ``lp`` (a MILP when it has integrality) within ``time_limit_s`` [s]."""
    solver = new_highs()
    solver.setOptionValue("time_limit", max(time_limit_s, 0.01))
    solver.setOptionValue("mip_rel_gap", mip_gap_frac)
    solver.setOptionValue("mip_abs_gap", mip_gap_abs)
    solver.passModel(lp)
    started = time.perf_counter()
    solver.run()
    elapsed = time.perf_counter() - started
    model_status = solver.getModelStatus()
    info = solver.getInfo()
    is_mip = len(lp.integrality_) > 0
    if model_status == highspy.HighsModelStatus.kInfeasible:
        return HighsOutcome(SolveStatus.infeasible, None, None, None, None, elapsed)
    if model_status == highspy.HighsModelStatus.kModelEmpty:  # no columns: nothing to decide
        nothing = np.zeros(0)
        return HighsOutcome(SolveStatus.optimal, 0.0, 0.0, nothing, np.zeros(lp.num_row_), elapsed)
    if info.primal_solution_status != 2:  # no feasible point
        return HighsOutcome(SolveStatus.error, None, None, None, None, elapsed)
    solution = solver.getSolution()
    optimal = model_status == highspy.HighsModelStatus.kOptimal
    objective = float(info.objective_function_value)
    bound = float(info.mip_dual_bound) if is_mip else objective if optimal else None
    return HighsOutcome(
        SolveStatus.optimal if optimal else SolveStatus.feasible,
        objective,
        bound,
        np.asarray(solution.col_value),
        None if is_mip or not solution.dual_valid else np.asarray(solution.row_dual),
        elapsed,
    )


def dual_bound(lp: highspy.HighsLp, row_duals: np.ndarray) -> float:
    """A lower bound of the LP ``lp`` (every column bounded) from any row duals: the
    Lagrangian ``Σ y_i b_i + Σ_j min(l_j d_j, u_j d_j)``, ``d = c - Aᵀy``, with each dual
    cleared where its sign asks for an infinite row bound. Valid whatever solved the LP and
    however accurately."""
    lower, upper = np.asarray(lp.row_lower_), np.asarray(lp.row_upper_)
    y = np.where(
        ((row_duals > 0) & np.isfinite(lower)) | ((row_duals < 0) & np.isfinite(upper)),
        row_duals,
        0.0,
    )
    rhs = np.where(y > 0, lower, upper)
    matrix = lp.a_matrix_
    start = np.asarray(matrix.start_, dtype=np.int64)
    owner = np.repeat(np.arange(lp.num_row_), np.diff(start))
    reduced = np.array(lp.col_cost_, dtype=np.float64)
    index = np.asarray(matrix.index_, dtype=np.int64)
    np.subtract.at(reduced, index, np.asarray(matrix.value_) * y[owner])
    col_lower, col_upper = np.asarray(lp.col_lower_), np.asarray(lp.col_upper_)
    return float(
        np.dot(y[y != 0], rhs[y != 0]) + np.minimum(col_lower * reduced, col_upper * reduced).sum()
    )
