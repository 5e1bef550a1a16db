"""The run's time: the service's simulated origin and slots, and the run's phases in wall time."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from idlefleet.settings import PlannerSettings
from idlefleet.sim.clock import ScaledClock

#: The service's time at the first plan: a June morning (08:00 in Berlin and Paris).
ORIGIN = datetime(2020, 6, 10, 6, 0, tzinfo=UTC)
SETTINGS = PlannerSettings(slot_minutes=15, horizon_hours=24)
SLOT = timedelta(minutes=SETTINGS.slot_minutes)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The run's phases in wall time [s since the epoch]: requests from `warm_wall_s`, not
    counted until `idle_wall_s`, then alone until `load_wall_s`, then with telemetry until
    `end_wall_s`."""

    clock: ScaledClock
    warm_wall_s: float
    idle_wall_s: float
    load_wall_s: float
    end_wall_s: float
