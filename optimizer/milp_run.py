"""Run a built Pyomo model on HiGHS (in-process, via highspy) and read its outcome."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from optimizer.errors import SolveError
from optimizer.plan import SolveStatus

DEFAULT_TIME_LIMIT_S = 30.0
DEFAULT_MIP_GAP_FRAC = 1e-4
#: absolute optimality gap [currency]. Parity makes some gaps unprovable by branching (an odd
#: number of shards on vehicles doing 2 per slot leaves one half-used running slot whose wear
#: and energy the LP bound never sees), so a cent is accepted as proof rather than a timeout.
DEFAULT_MIP_GAP_ABS = 1e-2

_ONE_SOLVE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class SolveResult:
    """Outcome of one HiGHS run: status, incumbent, bound and timings [s]."""

    status: SolveStatus
    objective: float | None
    best_bound: float | None
    solve_s: float
    message: str


def solve_model(
    model: pyo.ConcreteModel,
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    mip_gap_frac: float = DEFAULT_MIP_GAP_FRAC,
    mip_gap_abs: float = DEFAULT_MIP_GAP_ABS,
) -> SolveResult:
    """Solve ``model`` with HiGHS (in-process, via highspy) and load the incumbent if any.

    One solve at a time per process: Pyomo's solver interface redirects the process's
    stdout and stderr while it runs, and two at once (a service's tick and its health probe)
    break each other's redirection and can deadlock.
    """
    solver = Highs()
    if not solver.available():
        raise SolveError("HiGHS (highspy) is not available")
    started = time.perf_counter()
    try:
        with _ONE_SOLVE_AT_A_TIME:
            results = solver.solve(
                model,
                load_solutions=False,
                raise_exception_on_nonoptimal_result=False,
                time_limit=time_limit_s,
                rel_gap=mip_gap_frac,
                abs_gap=mip_gap_abs,
                solver_options={"output_flag": False, "threads": 1},
            )
    except Exception as exc:  # the solver wrapper raises several types
        raise SolveError(f"HiGHS failed: {exc}") from exc
    elapsed = time.perf_counter() - started
    term = results.termination_condition
    has_solution = results.solution_status in (SolutionStatus.feasible, SolutionStatus.optimal)
    bound = results.objective_bound
    best_bound = float(bound) if bound is not None and math.isfinite(bound) else None
    if term in (TerminationCondition.provenInfeasible, TerminationCondition.infeasibleOrUnbounded):
        return SolveResult(SolveStatus.infeasible, None, None, elapsed, str(term))
    if not has_solution:
        return SolveResult(SolveStatus.error, None, best_bound, elapsed, f"no solution ({term})")
    results.solution_loader.load_vars()
    status = (
        SolveStatus.optimal
        if term == TerminationCondition.convergenceCriteriaSatisfied
        else SolveStatus.feasible
    )
    objective = results.incumbent_objective
    return SolveResult(status, objective, best_bound, elapsed, str(term))
