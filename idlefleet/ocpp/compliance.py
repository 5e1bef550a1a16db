"""Does a station follow its profile? Metered power against the limit in force.

A station is uncontrollable once it rejects a profile, or once `samples` consecutive meter
samples draw more than the limit in force plus a tolerance (`accepted but not applied`).
It stays so until `reset` (by an operator; a reboot does not reset it); the planner then
treats its cars as charging at full power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ComplianceRule:
    """When metered power counts as not following a limit.

    A sample is over when `power_kw > limit_kw + max(tolerance_kw, tolerance_frac * limit_kw)`;
    `samples` consecutive over-samples make the station uncontrollable. The tolerance covers
    metering error and a car's ramp; `samples` covers a station still applying a new profile.
    """

    tolerance_kw: float = 0.5
    tolerance_frac: float = 0.05
    samples: int = 3

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tolerance_kw) and self.tolerance_kw >= 0):
            raise ValueError(f"tolerance_kw must be >= 0, got {self.tolerance_kw}")
        if not (0 <= self.tolerance_frac < 1):
            raise ValueError(f"tolerance_frac must be in [0, 1), got {self.tolerance_frac}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")

    def is_over(self, power_kw: float, limit_kw: float) -> bool:
        """Whether `power_kw` [kW] exceeds `limit_kw` [kW] by more than the tolerance."""
        allowance = max(self.tolerance_kw, self.tolerance_frac * limit_kw)
        return power_kw > limit_kw + allowance


@dataclass
class Compliance:
    """One EVSE's (or station's) record: consecutive over-samples and the verdict."""

    rule: ComplianceRule
    over_in_a_row: int = 0
    controllable: bool = True
    reason: str | None = None

    def observe(self, power_kw: float, limit_kw: float | None) -> bool:
        """Count one meter sample [kW] against the limit in force [kW] (None: no limit).

        Returns whether the EVSE is still controllable.
        """
        if limit_kw is None or not self.rule.is_over(power_kw, limit_kw):
            self.over_in_a_row = 0
            return self.controllable
        self.over_in_a_row += 1
        if self.controllable and self.over_in_a_row >= self.rule.samples:
            self.controllable = False
            self.reason = (
                f"drew {power_kw:.2f} kW over a {limit_kw:.2f} kW limit for "
                f"{self.over_in_a_row} samples"
            )
        return self.controllable

    def rejected(self, what: str) -> None:
        """The station rejected a profile (`what` names it): uncontrollable at once."""
        self.controllable = False
        self.reason = f"rejected {what}"

    def reset(self) -> None:
        """Trust the station again (an operator said so)."""
        self.over_in_a_row = 0
        self.controllable = True
        self.reason = None
