"""Errors raised by the optimizer package."""

from __future__ import annotations

from collections.abc import Sequence


class OptimizerError(Exception):
    """Base class of every error the optimizer raises."""


class ScenarioError(OptimizerError, ValueError):
    """A scenario document is malformed or inconsistent.

    The message starts with the JSON path of the offending field, e.g.
    ``vehicles[3].soc_kwh: must be <= battery_kwh (75.0), got 80.0``; the path alone is
    kept as :attr:`path`.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class SolveError(OptimizerError, RuntimeError):
    """The solver failed without a usable answer (no incumbent, solver error)."""


class InfeasibleError(SolveError):
    """The solver proved the model has no schedule at all."""


class PlanError(OptimizerError, ValueError):
    """A plan document is malformed."""


class PlanViolationError(OptimizerError, RuntimeError):
    """A strategy produced a plan that breaks the contract: a bug, never an input problem.

    :attr:`violations` holds every broken rule found by ``check_plan``.
    """

    def __init__(self, strategy: str, violations: Sequence[object]) -> None:
        self.strategy = strategy
        self.violations = list(violations)
        shown = "; ".join(str(v) for v in self.violations[:10])
        more = len(self.violations) - 10
        super().__init__(
            f"{strategy} plan breaks the contract ({len(self.violations)} violations): {shown}"
            + (f"; and {more} more" if more > 0 else "")
        )
