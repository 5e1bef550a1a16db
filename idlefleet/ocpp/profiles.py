"""Planned charge powers and DR caps to OCPP charging profiles (2.0.1 and 1.6), and back.

Three profiles, each within the EVSE's declared limits (`EvseLimits`):
- the boot-time default (`default_schedule`, TxDefaultProfile): full power, relative, no end,
  so owners are charged if idlefleet disappears;
- a car's plan (`plan_schedule`, TxProfile): an absolute schedule over the plan's remaining
  slots, never above the planned power nor the EVSE's limit; after its last slot the station
  falls back to the default (full power);
- a DR cap (`cap_schedule`, ChargingStationMaxProfile / ChargePointMaxProfile): a station-wide
  limit at or under the cap [kW] over the cap's interval.

A `Schedule` is version-neutral; `to_v201` and `to_v16` make the library's dataclasses. Limits
in amperes are per phase: P [W] = I [A] * phases * voltage [V]. Every conversion rounds down
to the 0.1 step OCPP 1.6 requires, so a limit never exceeds the power it was made from.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

from ocpp.v16 import datatypes as dt16
from ocpp.v16 import enums as en16
from ocpp.v201 import datatypes as dt201
from ocpp.v201 import enums as en201

LIMIT_STEP = 0.1
"""OCPP 1.6 limits are multiples of 0.1 (W or A); used for 2.0.1 too."""

DEFAULT_PROFILE_ID = 1
CAP_PROFILE_ID = 2
TX_PROFILE_ID_BASE = 100
"""A TxProfile's id is this plus the EVSE/connector id, so a new plan replaces the old one."""


class ProfileError(ValueError):
    """Slots or limits that cannot become a charging profile; the message says why."""


class RateUnit(StrEnum):
    """The unit a station's schedules are written in."""

    W = "W"
    A = "A"


class Purpose(StrEnum):
    """What a profile is for (the 2.0.1 names; `to_v16` maps them)."""

    DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"
    STATION_MAX = "ChargingStationMaxProfile"


@dataclass(frozen=True)
class EvseLimits:
    """What an EVSE (2.0.1) or connector (1.6) declares it can do.

    `max_power_kw` [kW] is the most it delivers; `phases` (1 or 3) and `voltage_v` [V, phase to
    neutral] convert powers to currents; `unit` is the schedule unit it accepts;
    `min_current_a` [A] is the least current a car can charge at (IEC 61851: 6 A): a planned
    power below it becomes 0 (a pause), never a limit the car cannot follow.
    """

    max_power_kw: float
    phases: int = 3
    voltage_v: float = 230.0
    unit: RateUnit = RateUnit.W
    min_current_a: float = 6.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_power_kw) and self.max_power_kw > 0):
            raise ProfileError(f"max_power_kw must be positive, got {self.max_power_kw}")
        if self.phases not in (1, 3):
            raise ProfileError(f"phases must be 1 or 3, got {self.phases}")
        if not (math.isfinite(self.voltage_v) and self.voltage_v > 0):
            raise ProfileError(f"voltage_v must be positive, got {self.voltage_v}")
        if not (math.isfinite(self.min_current_a) and self.min_current_a >= 0):
            raise ProfileError(f"min_current_a must be >= 0, got {self.min_current_a}")

    @property
    def min_power_kw(self) -> float:
        """The least power a car charges at [kW]."""
        return self.min_current_a * self.phases * self.voltage_v / 1000.0

    def to_unit(self, power_kw: float) -> float:
        """A power [kW] as a limit in this EVSE's unit [W or A per phase], rounded down."""
        value = power_kw * 1000.0
        if self.unit is RateUnit.A:
            value /= self.phases * self.voltage_v
        return _floor_step(value)

    def to_kw(self, limit: float) -> float:
        """A limit in this EVSE's unit [W or A per phase] as a power [kW]."""
        if self.unit is RateUnit.A:
            return limit * self.phases * self.voltage_v / 1000.0
        return limit / 1000.0


class SlotPower(NamedTuple):
    """One planned slot: grid power into the car over `[start, end)` [kW]."""

    start: datetime
    end: datetime
    power_kw: float


@dataclass(frozen=True)
class Period:
    """A schedule period from `start_s` [s after the schedule's start] at `limit` [W or A]."""

    start_s: int
    limit: float


@dataclass(frozen=True)
class Schedule:
    """A version-neutral charging schedule.

    `start` is None for a relative schedule; `duration_s` [s] is None for one without end.
    `phases` is the number of phases the limits are written for.
    """

    purpose: Purpose
    unit: RateUnit
    phases: int
    periods: tuple[Period, ...]
    start: datetime | None = None
    duration_s: int | None = None

    def limit_kw_at(self, moment: datetime, limits: EvseLimits) -> float | None:
        """The limit in force at `moment` [kW]; None outside the schedule."""
        offset = (moment - self.start).total_seconds() if self.start is not None else 0.0
        if offset < 0 or (self.duration_s is not None and offset >= self.duration_s):
            return None
        in_force = [p for p in self.periods if p.start_s <= offset]
        return limits.to_kw(in_force[-1].limit) if in_force else None


def _floor_step(value: float) -> float:
    """`value` rounded down to a multiple of `LIMIT_STEP` (0 for anything below 0)."""
    if value <= 0:
        return 0.0
    # The epsilon keeps exact multiples (1.2 / 0.1 = 11.999...) from losing a step.
    return round(math.floor(value / LIMIT_STEP + 1e-9) * LIMIT_STEP, 1)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ProfileError(f"{name} is naive: {moment.isoformat()}")
    return moment.astimezone(UTC)


def clamp_kw(power_kw: float, limits: EvseLimits) -> float:
    """The power an EVSE is told to draw for a planned `power_kw` [kW].

    Never above the plan or the EVSE's maximum; below the car's minimum it is 0 (a pause).
    """
    if not math.isfinite(power_kw):
        raise ProfileError(f"planned power is not finite: {power_kw}")
    power = min(max(power_kw, 0.0), limits.max_power_kw)
    return 0.0 if power < limits.min_power_kw else power


def tx_limit(power_kw: float, limits: EvseLimits) -> float:
    """The limit [W or A per phase] an EVSE is given for a planned `power_kw` [kW].

    `clamp_kw` in the EVSE's unit; a limit that rounding took under the car's minimum is 0.
    """
    limit = limits.to_unit(clamp_kw(power_kw, limits))
    return 0.0 if limits.to_kw(limit) < limits.min_power_kw else limit


def default_schedule(limits: EvseLimits) -> Schedule:
    """The boot-time TxDefaultProfile: the EVSE's full power from each session's start."""
    return Schedule(
        purpose=Purpose.DEFAULT,
        unit=limits.unit,
        phases=limits.phases,
        periods=(Period(0, limits.to_unit(limits.max_power_kw)),),
    )


def plan_schedule(slots: Sequence[SlotPower], limits: EvseLimits, now: datetime) -> Schedule:
    """A TxProfile carrying out a car's plan over its slots that end after `now`.

    `slots` are contiguous and in order. Consecutive slots with the same limit share a period.
    Raises `ProfileError` for naive times, gaps, overlaps or no remaining slot.
    """
    now = _utc(now, "now")
    remaining = [
        SlotPower(_utc(s.start, "slot start"), _utc(s.end, "slot end"), s.power_kw)
        for s in slots
        if _utc(s.end, "slot end") > now
    ]
    if not remaining:
        raise ProfileError("no slot of the plan ends after now")
    for earlier, later in itertools.pairwise(remaining):
        if later.start != earlier.end:
            raise ProfileError(
                f"slots are not contiguous: {earlier.end.isoformat()} then "
                f"{later.start.isoformat()}"
            )
    for slot in remaining:
        if slot.end <= slot.start:
            raise ProfileError(f"empty slot at {slot.start.isoformat()}")
    start = remaining[0].start
    periods: list[Period] = []
    for slot in remaining:
        limit = tx_limit(slot.power_kw, limits)
        if periods and periods[-1].limit == limit:
            continue
        periods.append(Period(int((slot.start - start).total_seconds()), limit))
    duration = int((remaining[-1].end - start).total_seconds())
    return Schedule(Purpose.TX, limits.unit, limits.phases, tuple(periods), start, duration)


def cap_schedule(cap_kw: float, start: datetime, end: datetime, station: EvseLimits) -> Schedule:
    """A station-wide limit at or under `cap_kw` [kW] over `[start, end)`.

    `station` describes the whole station (its maximum and the unit it accepts); the limit is
    the cap, or the station's maximum if that is lower.
    """
    start, end = _utc(start, "cap start"), _utc(end, "cap end")
    if end <= start:
        raise ProfileError(f"cap ends before it starts: {start.isoformat()}")
    if not (math.isfinite(cap_kw) and cap_kw >= 0):
        raise ProfileError(f"cap_kw must be >= 0, got {cap_kw}")
    limit = station.to_unit(min(cap_kw, station.max_power_kw))
    duration = math.ceil((end - start).total_seconds())
    return Schedule(
        Purpose.STATION_MAX, station.unit, station.phases, (Period(0, limit),), start, duration
    )


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_v201(
    schedule: Schedule, profile_id: int, transaction_id: str | None = None
) -> dt201.ChargingProfileType:
    """The OCPP 2.0.1 ChargingProfileType of a schedule (stack level 0)."""
    absolute = schedule.start is not None
    return dt201.ChargingProfileType(
        id=profile_id,
        stack_level=0,
        charging_profile_purpose=en201.ChargingProfilePurposeEnumType(schedule.purpose.value),
        charging_profile_kind=(
            en201.ChargingProfileKindEnumType.absolute
            if absolute
            else en201.ChargingProfileKindEnumType.relative
        ),
        transaction_id=transaction_id,
        charging_schedule=[
            dt201.ChargingScheduleType(
                id=profile_id,
                charging_rate_unit=en201.ChargingRateUnitEnumType(schedule.unit.value),
                start_schedule=_timestamp(schedule.start) if schedule.start else None,
                duration=schedule.duration_s,
                charging_schedule_period=[
                    dt201.ChargingSchedulePeriodType(
                        start_period=p.start_s, limit=p.limit, number_phases=schedule.phases
                    )
                    for p in schedule.periods
                ],
            )
        ],
    )


_V16_PURPOSE = {
    Purpose.DEFAULT: en16.ChargingProfilePurposeType.tx_default_profile,
    Purpose.TX: en16.ChargingProfilePurposeType.tx_profile,
    Purpose.STATION_MAX: en16.ChargingProfilePurposeType.charge_point_max_profile,
}


def to_v16(
    schedule: Schedule, profile_id: int, transaction_id: int | None = None
) -> dt16.ChargingProfile:
    """The OCPP 1.6 ChargingProfile of a schedule (stack level 0)."""
    absolute = schedule.start is not None
    return dt16.ChargingProfile(
        charging_profile_id=profile_id,
        stack_level=0,
        charging_profile_purpose=_V16_PURPOSE[schedule.purpose],
        charging_profile_kind=(
            en16.ChargingProfileKindType.absolute
            if absolute
            else en16.ChargingProfileKindType.relative
        ),
        transaction_id=transaction_id,
        charging_schedule=dt16.ChargingSchedule(
            charging_rate_unit=en16.ChargingRateUnitType(schedule.unit.value),
            start_schedule=_timestamp(schedule.start) if schedule.start else None,
            duration=schedule.duration_s,
            charging_schedule_period=[
                dt16.ChargingSchedulePeriod(
                    start_period=p.start_s, limit=p.limit, number_phases=schedule.phases
                )
                for p in schedule.periods
            ],
        ),
    )


def tx_profile_id(evse_id: int) -> int:
    """The id of an EVSE's (connector's) TxProfile: a new plan replaces the previous one."""
    return TX_PROFILE_ID_BASE + evse_id
