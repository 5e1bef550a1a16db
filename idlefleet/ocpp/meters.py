"""OCPP meter values (2.0.1 and 1.6, as the `ocpp` library hands them over) to one sample.

A sample keeps what idlefleet needs: the energy register [Wh], the active import power [W]
and the car's state of charge [%] when the car sends it. A measurand given per phase only is
summed over the phases (power) or taken from the first phase (energy register, SoC).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
SOC = "SoC"
_SCALE = {"Wh": 1.0, "kWh": 1000.0, "W": 1.0, "kW": 1000.0, "Percent": 1.0}


class MeterError(ValueError):
    """A meter value that cannot be read; the message says why."""


@dataclass(frozen=True)
class MeterSample:
    """What an EVSE measured at `time` (UTC); None for a measurand it did not send.

    `energy_wh` [Wh] is the import register, `power_w` [W] the active import power (into the
    car), `soc_pct` [%] the car's state of charge.
    """

    time: datetime
    energy_wh: float | None = None
    power_w: float | None = None
    soc_pct: float | None = None

    @property
    def power_kw(self) -> float | None:
        """The active import power [kW]."""
        return None if self.power_w is None else self.power_w / 1000.0


def parse_time(text: str) -> datetime:
    """An OCPP timestamp (RFC 3339, `Z` allowed) as an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MeterError(f"bad timestamp {text!r}") from exc
    if moment.tzinfo is None:
        raise MeterError(f"naive timestamp {text!r}")
    return moment.astimezone(UTC)


def _pick(values: Sequence[tuple[str | None, float]], *, sum_phases: bool) -> float | None:
    totals = [v for phase, v in values if phase is None]
    if totals:
        return totals[-1]
    if not values:
        return None
    return sum(v for _, v in values) if sum_phases else values[0][1]


def _sample(time: datetime, readings: Iterable[tuple[str, str | None, float]]) -> MeterSample:
    by_measurand: dict[str, list[tuple[str | None, float]]] = {}
    for measurand, phase, value in readings:
        by_measurand.setdefault(measurand, []).append((phase, value))
    return MeterSample(
        time=time,
        energy_wh=_pick(by_measurand.get(ENERGY, []), sum_phases=False),
        power_w=_pick(by_measurand.get(POWER, []), sum_phases=True),
        soc_pct=_pick(by_measurand.get(SOC, []), sum_phases=False),
    )


def _reading(measurand: str, unit: str | None, value: float, phase: Any) -> tuple[str, Any, float]:
    scale = _SCALE.get(unit or ("Wh" if measurand == ENERGY else "W"))
    if scale is None:
        raise MeterError(f"{measurand}: unknown unit {unit!r}")
    return measurand, phase, value * scale


def samples_v201(meter_values: Sequence[Mapping[str, Any]]) -> list[MeterSample]:
    """OCPP 2.0.1 MeterValueType dicts (snake_case keys) to samples, one per timestamp."""
    samples = []
    for meter_value in meter_values:
        readings = []
        for sampled in meter_value.get("sampled_value", []):
            measurand = sampled.get("measurand", ENERGY)
            unit_of_measure = sampled.get("unit_of_measure") or {}
            multiplier = 10.0 ** int(unit_of_measure.get("multiplier", 0))
            unit = unit_of_measure.get("unit")
            value = float(sampled["value"]) * multiplier
            readings.append(_reading(measurand, unit, value, sampled.get("phase")))
        samples.append(_sample(parse_time(meter_value["timestamp"]), readings))
    return samples


def samples_v16(meter_values: Sequence[Mapping[str, Any]]) -> list[MeterSample]:
    """OCPP 1.6 MeterValue dicts (snake_case keys; values are strings) to samples."""
    samples = []
    for meter_value in meter_values:
        readings = []
        for sampled in meter_value.get("sampled_value", []):
            measurand = sampled.get("measurand", ENERGY)
            try:
                value = float(sampled["value"])
            except (KeyError, ValueError) as exc:
                raise MeterError(f"{measurand}: bad value {sampled.get('value')!r}") from exc
            readings.append(_reading(measurand, sampled.get("unit"), value, sampled.get("phase")))
        samples.append(_sample(parse_time(meter_value["timestamp"]), readings))
    return samples
