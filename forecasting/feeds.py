"""Carbon-intensity JSON feeds shaped like WattTime and Electricity Maps, in our terms.

Average and marginal intensity answer different questions and are distinct types here:

* ``AverageIntensity``: emissions of the whole generation mix per kWh consumed
  (location-based accounting; what ``GridSignal`` carries and the planner minimises);
* ``MarginalIntensity``: emissions of the generator that responds to one more kWh
  (WattTime's MOER); it must never be planned or accounted as an average.

``VARIABLE_MAP`` is the one place where each feed's names and units map to ours:

* WattTime API v3 (``/v3/forecast``, ``/v3/historical``): ``{"meta": {"signal_type",
  "units", ...}, "data": [{"point_time", "value"}, ...]}``; ``co2_moer`` is marginal,
  ``co2_aoer`` average; values in lbs CO2 per MWh.
* Electricity Maps API v3 (``/v3/carbon-intensity/history`` or ``.../forecast``):
  ``{"zone", "history" | "forecast": [{"datetime", "carbonIntensity",
  "emissionFactorType"}, ...]}``; grid-average lifecycle intensity in gCO2eq/kWh
  (points with another ``emissionFactorType`` are refused).

Point times are interval starts and must carry an offset (naive times are refused).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import numpy as np
import pandas as pd

from forecasting.carbon import resample_to_grid
from forecasting.timegrid import SlotGrid, parse_utc_times, require_utc_index

Kind = Literal["average", "marginal"]
#: Grams per pound [g/lb] (international avoirdupois pound).
G_PER_LB: Final = 453.59237


@dataclass(frozen=True)
class FeedFields:
    """How one feed names and scales its points, and which kind of intensity it carries."""

    points: tuple[str, ...]  # top-level keys that may hold the list of points
    time: str  # point field -> slot_start
    value: str  # point field -> intensity, in ``unit``
    unit: str
    g_per_kwh_per_unit: float
    unit_field: str | None  # "<section>.<field>" that must state ``unit``, or None
    kind_field: str | None  # "<section>.<field>" naming the signal, or None: ``kinds[""]``
    kinds: Mapping[str, Kind]
    required: Mapping[str, str]  # point field -> the only value accepted, when present


#: Feed name -> its fields; the one place feed names and units map to ours.
VARIABLE_MAP: Final[dict[str, FeedFields]] = {
    "watttime": FeedFields(
        points=("data",),
        time="point_time",
        value="value",
        unit="lbs_co2_per_mwh",
        g_per_kwh_per_unit=G_PER_LB / 1000.0,  # lb/MWh -> g/kWh
        unit_field="meta.units",
        kind_field="meta.signal_type",
        kinds={"co2_moer": "marginal", "co2_aoer": "average"},
        required={},
    ),
    "electricitymaps": FeedFields(
        points=("history", "forecast"),
        time="datetime",
        value="carbonIntensity",
        unit="gCO2eq/kWh",
        g_per_kwh_per_unit=1.0,
        unit_field=None,
        kind_field=None,
        kinds={"": "average"},
        required={"emissionFactorType": "lifecycle"},
    ),
}


class FeedError(ValueError):
    """A feed document that cannot be read; the message names the field."""


@dataclass(frozen=True)
class _Intensity:
    series: pd.Series  # gCO2/kWh on a strictly increasing UTC index of interval starts
    source: str

    def __post_init__(self) -> None:
        index = require_utc_index(self.series.index, f"{self.source} index")
        if not index.is_monotonic_increasing or not index.is_unique:
            raise FeedError(f"{self.source}: point times must be strictly increasing")
        values = self.series.to_numpy(dtype=float)
        if not (np.isfinite(values).all() and (values >= 0).all()):
            raise FeedError(f"{self.source}: intensity must be finite and >= 0")

    def on_grid(self, grid: SlotGrid) -> np.ndarray:
        """Slot means on ``grid`` [gCO2/kWh]; ``CoverageError`` if the points do not cover it."""
        return resample_to_grid(self.series, grid, self.source)


@dataclass(frozen=True)
class AverageIntensity(_Intensity):
    """Average (location-based) intensity of the consumed mix [gCO2eq/kWh]."""

    kind: ClassVar[Literal["average"]] = "average"


@dataclass(frozen=True)
class MarginalIntensity(_Intensity):
    """Marginal (operating) intensity of the responding generator [gCO2/kWh]."""

    kind: ClassVar[Literal["marginal"]] = "marginal"


def read_feed(
    feed: str, document: str | bytes | Mapping[str, Any]
) -> AverageIntensity | MarginalIntensity:
    """Parse a ``feed`` document (JSON text or parsed) into intensity of the kind it carries."""
    if feed not in VARIABLE_MAP:
        raise FeedError(f"feed must be one of {sorted(VARIABLE_MAP)}, got {feed!r}")
    fields = VARIABLE_MAP[feed]
    doc = json.loads(document) if isinstance(document, str | bytes) else document
    if not isinstance(doc, Mapping):
        raise FeedError(f"{feed}: expected a JSON object, got {type(doc).__name__}")
    if fields.unit_field is not None:
        unit = _meta(doc, fields.unit_field)
        if unit != fields.unit:
            raise FeedError(f"{feed}: {fields.unit_field} must be {fields.unit!r}, got {unit!r}")
    kind = _kind(feed, fields, doc)
    points = _points(feed, fields, doc)
    for name, accepted in fields.required.items():
        other = [p[name] for p in points if name in p and p[name] != accepted]
        if other:
            raise FeedError(f"{feed}: {name} must be {accepted!r}, got {other[0]!r}")
    times = parse_utc_times(
        (_field(feed, p, fields.time) for p in points), f"{feed}: {fields.time}"
    )
    values = [_number(feed, _field(feed, p, fields.value), fields.value) for p in points]
    series = pd.Series(
        np.asarray(values) * fields.g_per_kwh_per_unit, index=times, name="intensity_g_per_kwh"
    )
    source = f"{feed} {kind} intensity"
    if kind == "marginal":
        return MarginalIntensity(series, source)
    return AverageIntensity(series, source)


def read_average_feed(feed: str, document: str | bytes | Mapping[str, Any]) -> AverageIntensity:
    """Like ``read_feed``, refusing a marginal signal (``GridSignal`` carries averages)."""
    intensity = read_feed(feed, document)
    if not isinstance(intensity, AverageIntensity):
        raise FeedError(f"{feed}: the feed carries marginal intensity, not average")
    return intensity


def _kind(feed: str, fields: FeedFields, doc: Mapping[str, Any]) -> Kind:
    if fields.kind_field is None:
        return fields.kinds[""]
    signal = _meta(doc, fields.kind_field)
    if not isinstance(signal, str) or signal not in fields.kinds:
        raise FeedError(
            f"{feed}: {fields.kind_field} must be one of {sorted(fields.kinds)}, got {signal!r}"
        )
    return fields.kinds[signal]


def _meta(doc: Mapping[str, Any], path: str) -> Any:
    """The value at ``"<section>.<field>"`` of ``doc``, or None."""
    section, name = path.split(".")
    holder = doc.get(section)
    return holder.get(name) if isinstance(holder, Mapping) else None


def _points(feed: str, fields: FeedFields, doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = [key for key in fields.points if key in doc]
    if len(found) != 1:
        raise FeedError(f"{feed}: expected exactly one of {list(fields.points)}, found {found}")
    points = doc[found[0]]
    if not isinstance(points, list) or not points:
        raise FeedError(f"{feed}: {found[0]} must be a non-empty list of points")
    if not all(isinstance(p, Mapping) for p in points):
        raise FeedError(f"{feed}: every item of {found[0]} must be an object")
    return points


def _field(feed: str, point: Mapping[str, Any], name: str) -> Any:
    if name not in point:
        raise FeedError(f"{feed}: a point lacks {name!r}: {dict(point)}")
    return point[name]


def _number(feed: str, value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FeedError(f"{feed}: {name} must be a number, got {value!r}")
    return float(value)
