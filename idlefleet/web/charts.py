"""Charts as the pages hand them to templates: slot-by-slot series with their numbers.

A chart is rendered as a table (the `chart` macro in `templates/charts.html`); the console's
script (`static/console.js`) draws it with uPlot from that table's cells, so the picture and
its text alternative are the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

#: How a series is drawn: `step` holds a slot's value over the slot, `line` joins points,
#: `limit` is a dashed red step (a grid limit or a cap), `area` a filled step.
SeriesKind = Literal["step", "line", "limit", "area"]


@dataclass(frozen=True)
class Series:
    """One series: its label with unit, a value per x (None: not known) and how to draw it."""

    label: str
    values: Sequence[float | None]
    kind: SeriesKind = "step"


@dataclass(frozen=True)
class Chart:
    """A chart over slot starts [UTC]: `id` is unique on its page, `unit` names the y axis,
    `decimals` is how the table prints values."""

    id: str
    title: str
    unit: str
    slot_starts: Sequence[datetime]
    series: Sequence[Series]
    decimals: int = 1

    def __post_init__(self) -> None:
        for series in self.series:
            if len(series.values) != len(self.slot_starts):
                raise ValueError(
                    f"chart {self.id}: series {series.label!r} has {len(series.values)} "
                    f"values for {len(self.slot_starts)} slots"
                )

    def cell(self, value: float | None) -> str:
        """A value as the table prints it (`—` when not known)."""
        return "—" if value is None else f"{value:.{self.decimals}f}"

    def rows(self) -> list[tuple[int, str, list[tuple[str, str]]]]:
        """The numbers table's rows: the slot's start [s since the epoch] and its label
        (HH:MM UTC), and per series the value for the script (`data-y`, "" when not known)
        and as printed. Built in one pass: a template looping cell by cell is ten times
        slower at a fleet's size."""
        columns = [
            [("" if v is None else repr(float(v)), self.cell(v)) for v in series.values]
            for series in self.series
        ]
        return [
            (int(start.timestamp()), start.astimezone(UTC).strftime("%H:%M"), list(cells))
            for start, *cells in zip(self.slot_starts, *columns, strict=True)
        ]
