"""The planning strategies, by name (no dependencies: the CLI reads it at start-up)."""

from __future__ import annotations

import enum


class Strategy(enum.StrEnum):
    """How a scenario is planned: the MILP, or one of the two baselines under the same rules."""

    MILP = "milp"
    GREEDY = "greedy"
    IMMEDIATE = "immediate"
