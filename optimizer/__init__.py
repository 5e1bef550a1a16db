"""idlefleet's planner: scenario in, plan out (contract scenario-v2).

validate (``load_scenario``) → build (``optimizer.formulation``; above a size threshold the
fleet decomposition, ``optimizer.decompose``) → solve (``plan_scenario``) → extract (``Plan``)
→ check (``check_plan``, after every solve), with baselines under the same rules.
Importing this package does not import Pyomo; ``plan_scenario`` loads it on first use.
"""

from __future__ import annotations

from optimizer.assemble import assemble_plan, rescore_plan
from optimizer.checks import Violation, check_plan
from optimizer.errors import (
    OptimizerError,
    PlanError,
    PlanViolationError,
    ScenarioError,
    SolveError,
)
from optimizer.kpis import compute_kpis, objective_value
from optimizer.loader import format_timestamp, load_scenario, scenario_to_dict
from optimizer.plan import Assignment, Kpis, Plan, PlanSnapshot, SolveStatus, plan_from_dict
from optimizer.problem import DrEvent, Horizon, Job, Region, Scenario, Site, Vehicle
from optimizer.strategy import Strategy


def plan_scenario(
    scenario: Scenario,
    strategy: Strategy | str = Strategy.MILP,
    time_limit_s: float = 30.0,
    mip_gap_frac: float = 1e-4,
    mip_gap_abs: float = 1e-2,
) -> Plan:
    """Plan ``scenario``; see :func:`optimizer.solve.plan_scenario`."""
    from optimizer.solve import plan_scenario as _plan_scenario

    return _plan_scenario(scenario, strategy, time_limit_s, mip_gap_frac, mip_gap_abs)


__all__ = [
    "Assignment",
    "DrEvent",
    "Horizon",
    "Job",
    "Kpis",
    "OptimizerError",
    "Plan",
    "PlanError",
    "PlanSnapshot",
    "PlanViolationError",
    "Region",
    "Scenario",
    "ScenarioError",
    "Site",
    "SolveError",
    "SolveStatus",
    "Strategy",
    "Vehicle",
    "Violation",
    "assemble_plan",
    "check_plan",
    "compute_kpis",
    "format_timestamp",
    "load_scenario",
    "objective_value",
    "plan_from_dict",
    "plan_scenario",
    "rescore_plan",
    "scenario_to_dict",
]
