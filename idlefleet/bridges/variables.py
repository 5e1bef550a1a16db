"""Variable maps: how a maker's signals become our measured quantities, whatever the maker.

A maker's module decodes its records into readings (signal name -> value in the maker's
unit) and keeps one ``VARIABLE_MAP`` (signal name -> `Variable`); `apply_map` turns the
readings into `Quantities` in our units, refusing values outside each signal's range. Another
maker's stream is one more decoder and one more map.

Where several signals give one quantity, the first in map order that the record carries
wins, except for quantities in `ADDITIVE_QUANTITIES` (power through the AC and the DC inlet
adds up).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

#: A decoded signal: a number, a word (state names, numbers sent as text), a flag, or a
#: position (latitude, longitude) [deg].
Reading = float | str | bool | tuple[float, float]
NumberQuantity = Literal["soc_frac", "energy_kwh", "charge_limit_frac", "power_kw"]
#: Quantities summed over the signals that carry them.
ADDITIVE_QUANTITIES: Final[frozenset[NumberQuantity]] = frozenset({"power_kw"})


@dataclass(frozen=True)
class NumberVariable:
    """A signal that is one number: ours = reading [source_unit] * per_source_unit."""

    quantity: NumberQuantity
    source_unit: str
    per_source_unit: float
    low: float  # smallest reading accepted [source_unit]
    high: float  # largest reading accepted [source_unit]

    def convert(self, name: str, reading: Reading) -> float:
        """The reading in our unit; ReadingError when it is not a number in [low, high]."""
        value = _number(name, reading)
        if not self.low <= value <= self.high:  # NaN fails too
            raise ReadingError(
                f"out of range: {name} {value:g} {self.source_unit} "
                f"not in [{self.low:g}, {self.high:g}]"
            )
        return value * self.per_source_unit


@dataclass(frozen=True)
class ChargeStateVariable:
    """A signal naming a charge state: state -> plugged_in; None: the state says nothing."""

    states: Mapping[str, bool | None]

    def convert(self, name: str, reading: Reading) -> bool | None:
        if not isinstance(reading, str) or reading not in self.states:
            raise ReadingError(f"out of range: {name} {reading!r} is no known charge state")
        return self.states[reading]


@dataclass(frozen=True)
class LocationVariable:
    """A signal that is a position (latitude, longitude) [deg]."""

    def convert(self, name: str, reading: Reading) -> tuple[float, float]:
        if not isinstance(reading, tuple):
            raise ReadingError(f"out of range: {name} {reading!r} is no position")
        lat_deg, lon_deg = reading
        if not (-90.0 <= lat_deg <= 90.0 and -180.0 <= lon_deg <= 180.0):
            raise ReadingError(f"out of range: {name} ({lat_deg:g}, {lon_deg:g}) is no position")
        return lat_deg, lon_deg


Variable = NumberVariable | ChargeStateVariable | LocationVariable


class ReadingError(ValueError):
    """A mapped signal whose value is unusable; the message names the signal."""


@dataclass(frozen=True)
class Quantities:
    """What a record's mapped signals say, in our units; None: no signal says it."""

    soc_frac: float | None = None  # [0-1]
    energy_kwh: float | None = None  # [kWh]
    charge_limit_frac: float | None = None  # [0-1]
    power_kw: float | None = None  # into the car [kW]
    plugged_in: bool | None = None
    location_deg: tuple[float, float] | None = None  # (latitude, longitude) [deg]


def apply_map(readings: Mapping[str, Reading], variable_map: Mapping[str, Variable]) -> Quantities:
    """Convert the mapped readings (signals not in the map are ignored); ReadingError if bad."""
    numbers: dict[NumberQuantity, float] = {}
    plugged_in: bool | None = None
    location_deg: tuple[float, float] | None = None
    for name, variable in variable_map.items():
        if name not in readings:
            continue
        reading = readings[name]
        if isinstance(variable, NumberVariable):
            value = variable.convert(name, reading)
            if variable.quantity in ADDITIVE_QUANTITIES:
                numbers[variable.quantity] = numbers.get(variable.quantity, 0.0) + value
            else:
                numbers.setdefault(variable.quantity, value)
        elif isinstance(variable, ChargeStateVariable):
            state = variable.convert(name, reading)  # every mapped reading is checked
            if plugged_in is None:
                plugged_in = state
        elif location_deg is None:
            location_deg = variable.convert(name, reading)
    return Quantities(
        soc_frac=numbers.get("soc_frac"),
        energy_kwh=numbers.get("energy_kwh"),
        charge_limit_frac=numbers.get("charge_limit_frac"),
        power_kw=numbers.get("power_kw"),
        plugged_in=plugged_in,
        location_deg=location_deg,
    )


def _number(name: str, reading: Reading) -> float:
    """A numeric reading, also from text ("42.880"); booleans and positions are not numbers."""
    if isinstance(reading, bool | tuple):
        raise ReadingError(f"out of range: {name} {reading!r} is not a number")
    try:
        value = float(reading)
    except ValueError as exc:
        raise ReadingError(f"out of range: {name} {reading!r} is not a number") from exc
    if not math.isfinite(value):
        raise ReadingError(f"out of range: {name} {value} is not finite")
    return value
