"""What forecasting tells the planner: PV per site and grid intensity per region.

The demo and `idlefleet forecast publish` publish `forecast_messages`: the day-ahead
intensity forecast (`kind="forecast"`) made only from data before the grid starts, and
pvlib's clear-sky PV (no weather feed is wired in yet). `feed_signal` turns a live
WattTime or Electricity Maps forecast into a `GridSignal` (`idlefleet serve` polls them).
`IntensityFallback` makes the labelled fallback the service plans on when nothing
published covers its horizon (`forecasting.fallback`); it is never published.
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from forecasting.carbon import MAX_SAMPLE_SPACING, intensity_source, load_intensity_series
from forecasting.carbon_forecast import day_ahead
from forecasting.fallback import FallbackProfile
from forecasting.feeds import AverageIntensity, FeedError
from forecasting.regions import REGION_TIMEZONES
from forecasting.solar import clear_sky_pv_kw
from forecasting.timegrid import SlotGrid
from idlefleet.sites import SiteConfig
from streams.messages import GridSignal, Message, SolarForecast
from streams.topics import Stream

log = logging.getLogger(__name__)

INTENSITY_DATA = "ENTSO-E 2020 via Wiesner et al. (Let's Wait Awhile)"
#: Most values a `GridSignal` carries (its schema's bound).
MAX_SIGNAL_SLOTS = 10_000


def forecast_messages(
    sites: list[SiteConfig], grid: SlotGrid, issued_at: datetime, data_dir: Path | None
) -> list[tuple[Stream, Message]]:
    """A day-ahead `GridSignal` per region of `sites` and a clear-sky `SolarForecast` per site.

    The intensity history is the shipped excerpt, or the full files in `data_dir`; raises
    `IntensityCoverageError` when it holds not even a day before `grid.start`.
    """
    messages: list[tuple[Stream, Message]] = []
    for region in sorted({site.region for site in sites}):
        history = load_intensity_series(region, data_dir)
        forecast = day_ahead(history, grid, source=intensity_source(region, data_dir))
        messages.append(
            (
                Stream.GRID_SIGNALS,
                GridSignal(
                    region=region,
                    issued_at=issued_at,
                    start=grid.start,
                    slot_minutes=grid.slot_minutes,
                    kind="forecast",
                    source=f"{forecast.forecaster} day-ahead from {INTENSITY_DATA}",
                    intensity_g_per_kwh=forecast.intensity_g_per_kwh.tolist(),
                ),
            )
        )
    for site in sites:
        system = site.pv_system()
        if system is None:
            continue
        messages.append(
            (
                Stream.SOLAR_FORECASTS,
                SolarForecast(
                    site_id=site.site_id,
                    issued_at=issued_at,
                    start=grid.start,
                    slot_minutes=grid.slot_minutes,
                    source="pvlib clear-sky (Ineichen)",
                    pv_kw=clear_sky_pv_kw(system, grid).tolist(),
                ),
            )
        )
    return messages


def feed_signal(
    intensity: AverageIntensity,
    region: str,
    slot_minutes: int,
    issued_at: datetime,
    source: str,
) -> GridSignal:
    """A live feed's average intensity as a `GridSignal` of `slot_minutes` slots.

    The slots run from the first slot boundary (counted from UTC midnight) at or after the
    first point to the last one the points cover without a gap (a spacing above an hour ends
    them, as in `forecasting.carbon`); each value is the time-weighted slot mean. Raises
    `FeedError` when that is not one whole slot.
    """
    index = intensity.series.index
    spacing = index.to_series().diff()
    gaps = (spacing > pd.Timedelta(MAX_SAMPLE_SPACING)).to_numpy().nonzero()[0]
    series = intensity.series.iloc[: gaps[0]] if len(gaps) else intensity.series
    if len(series) >= 2:
        end = series.index[-1] + (series.index[-1] - series.index[-2])
    else:
        end = series.index[-1] + pd.Timedelta(MAX_SAMPLE_SPACING)
    slot = timedelta(minutes=slot_minutes)
    first = series.index[0].to_pydatetime()
    midnight = first.replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight + math.ceil((first - midnight) / slot) * slot
    slots = min(MAX_SIGNAL_SLOTS, math.floor((end.to_pydatetime() - start) / slot))
    if slots < 1:
        raise FeedError(
            f"{source}: the points cover {first.isoformat()} to {end.isoformat()}, "
            f"not one whole {slot_minutes}-minute slot"
        )
    grid = SlotGrid(start, slot_minutes, slots)
    values = AverageIntensity(series, intensity.source).on_grid(grid)
    return GridSignal(
        region=region,
        issued_at=issued_at,
        start=start,
        slot_minutes=slot_minutes,
        kind="forecast",
        source=source[:200],
        intensity_g_per_kwh=values.tolist(),
    )


class IntensityFallback:
    """The labelled fallback intensity of a region on any slots (`forecasting.fallback`),
    from the shipped 2020 excerpt or the full files in `data_dir`.

    Regions without 2020 data (anything but DE, GB, FR) have none: `signal` returns None.
    Profiles are built once per region; callers in several threads may share it.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir
        self._profiles: dict[str, FallbackProfile | None] = {}
        self._lock = threading.Lock()

    def profile(self, region: str) -> FallbackProfile | None:
        with self._lock:
            if region not in self._profiles:
                self._profiles[region] = self._build(region)
            return self._profiles[region]

    def _build(self, region: str) -> FallbackProfile | None:
        timezone = REGION_TIMEZONES.get(region)
        if timezone is None:
            log.warning("no 2020 intensity data for region %s: it has no fallback", region)
            return None
        try:
            series = load_intensity_series(region, self.data_dir)
            return FallbackProfile.from_series(series, region, timezone)
        except (OSError, ValueError) as exc:
            log.warning("region %s has no fallback intensity: %s", region, exc)
            return None

    def signal(
        self, region: str, start: datetime, slot_minutes: int, slots: int, issued_at: datetime
    ) -> GridSignal | None:
        """The fallback for `region` on the slots from `start`; None without data for it."""
        profile = self.profile(region)
        if profile is None:
            return None
        values = profile.values(start, slot_minutes, min(slots, MAX_SIGNAL_SLOTS))
        return GridSignal(
            region=region,
            issued_at=issued_at,
            start=start,
            slot_minutes=slot_minutes,
            kind="forecast",
            source=values.source,
            intensity_g_per_kwh=values.intensity_g_per_kwh.tolist(),
        )
