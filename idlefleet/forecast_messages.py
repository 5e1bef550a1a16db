"""What forecasting tells the planner: PV per site and day-ahead grid intensity per region.

The demo and `idlefleet forecast publish` publish these messages. Intensity is the
day-ahead forecast (`kind="forecast"`) made only from data before the grid starts; PV is
pvlib's clear sky (no weather feed is wired in yet).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from forecasting.carbon import intensity_source, load_intensity_series
from forecasting.carbon_forecast import day_ahead
from forecasting.solar import clear_sky_pv_kw
from forecasting.timegrid import SlotGrid
from idlefleet.sites import SiteConfig
from streams.messages import GridSignal, Message, SolarForecast
from streams.topics import Stream

INTENSITY_DATA = "ENTSO-E 2020 via Wiesner et al. (Let's Wait Awhile)"


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
