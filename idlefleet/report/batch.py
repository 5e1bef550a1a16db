"""Day-by-day batch runs: every strategy on the same inputs, planned on the forecast,
accounted on the actual intensity.

For each UTC day of a period, `generate_scenario` draws the day from real data (Caltech
sessions seeded from `seed + day.toordinal()`, the region's actual 2020 intensity, clear-sky
PV, jobs) for a fixed fleet of N cars at K depots. The planning scenario is the same day
with the region's intensity replaced by the day-ahead forecast issued at midnight from data
strictly before it (`forecasting.carbon_forecast.day_ahead`). Each strategy plans the
planning scenario; its schedule is then re-assembled on the actual scenario, so every KPI
uses the intensity that really occurred. Days run in worker processes (spawned); results
do not depend on how many.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from forecasting.carbon import (
    IntensityCoverageError,
    intensity_source,
    load_intensity_series,
    resample_to_grid,
)
from forecasting.carbon_forecast import day_ahead, history_days
from forecasting.timegrid import SlotGrid
from idlefleet.report.days import DayResult, StrategyDay, sample_vehicles, strategy_day
from idlefleet.sim.catalog import demo_sites
from idlefleet.sim.scenarios import generate_scenario
from optimizer import (
    Region,
    Scenario,
    SolveError,
    Strategy,
    format_timestamp,
    plan_scenario,
    rescore_plan,
)


@dataclass(frozen=True)
class SolverOptions:
    """MILP limits per day: time [s] and relative gap [0..1]."""

    time_limit_s: float
    mip_gap_frac: float


@dataclass(frozen=True)
class FleetConfig:
    """The generated fleet: `cars` cars at `sites` depots of `region`, `jobs_per_day` jobs,
    `slot_minutes` slots; intensity from the shipped excerpt or `data_dir`."""

    region: str
    cars: int
    sites: int
    jobs_per_day: int
    seed: int
    slot_minutes: int
    data_dir: Path | None


def day_seed(seed: int, day: date) -> int:
    """The seed of one day's draw: the same day gets the same cars in any period."""
    return seed + day.toordinal()


def period_days(first: date, last: date) -> list[date]:
    """Every day from `first` to `last`, both included."""
    return [first + timedelta(days=d) for d in range((last - first).days + 1)]


def check_coverage(config: FleetConfig, first: date, last: date) -> None:
    """Raise `IntensityCoverageError` unless the intensity data cover every slot of the
    period and at least one whole day before it (the first forecast's history)."""
    source = intensity_source(config.region, config.data_dir)
    series = load_intensity_series(config.region, config.data_dir)
    start = pd.Timestamp(first.isoformat(), tz="UTC").to_pydatetime()
    end = start + timedelta(days=(last - first).days + 1)
    resample_to_grid(series, SlotGrid.between(start, end, config.slot_minutes), source)
    if history_days(series, pd.Timestamp(start)) < 1:
        raise IntensityCoverageError(
            f"{source}: no whole day of history before {format_timestamp(start)}"
        )


@cache
def _history(region: str, data_dir: Path | None) -> pd.Series:
    """The region's intensity series, read once per process."""
    return load_intensity_series(region, data_dir)


def generated_day(config: FleetConfig, solver: SolverOptions, day: date) -> DayResult:
    """Draw `day`, plan it on the day-ahead forecast with every strategy, account it on the
    actual intensity."""
    sites = demo_sites(config.sites, config.cars, config.region)
    actual = generate_scenario(
        config.cars,
        sites,
        config.jobs_per_day,
        day,
        day_seed(config.seed, day),
        config.slot_minutes,
        config.data_dir,
    )
    horizon = actual.horizon
    grid = SlotGrid(horizon.start, horizon.slot_minutes, horizon.slots)
    source = intensity_source(config.region, config.data_dir)
    forecast = day_ahead(_history(config.region, config.data_dir), grid, source=source)
    (region,) = actual.regions
    forecast_g_per_kwh = tuple(forecast.intensity_g_per_kwh.tolist())
    planning = replace(
        actual, regions=(Region(region.id, forecast_g_per_kwh, region.price_per_kwh),)
    )
    return run_day(day.isoformat(), actual, planning, forecast.forecaster, solver)


def run_day(
    label: str,
    actual: Scenario,
    planning: Scenario,
    forecaster: str | None,
    solver: SolverOptions,
) -> DayResult:
    """Every strategy plans `planning`; each schedule is accounted on `actual` (energy paths
    kept for a few sample vehicles)."""
    samples = sample_vehicles(actual)
    strategies: dict[str, StrategyDay] = {}
    for strategy in Strategy:
        try:
            plan = plan_scenario(
                planning,
                strategy,
                time_limit_s=solver.time_limit_s,
                mip_gap_frac=solver.mip_gap_frac,
            )
        except SolveError as exc:
            strategies[strategy] = StrategyDay(strategy, "error", reason=str(exc))
            continue
        strategies[strategy] = strategy_day(
            actual, rescore_plan(actual, plan), plan.gap_frac, samples
        )
    planned_on_forecast = planning is not actual
    return DayResult(
        label=label,
        start=actual.horizon.start,
        slot_minutes=actual.horizon.slot_minutes,
        slots=actual.horizon.slots,
        actual_g_per_kwh={r.id: np.asarray(r.intensity_g_per_kwh) for r in actual.regions},
        forecast_g_per_kwh=(
            {r.id: np.asarray(r.intensity_g_per_kwh) for r in planning.regions}
            if planned_on_forecast
            else None
        ),
        forecaster=forecaster,
        site_region={s.id: s.region for s in actual.sites},
        pv_kw={s.id: np.asarray(s.pv_kw) for s in actual.sites},
        strategies=strategies,
        sample_vehicles=samples,
    )


def run_period(
    config: FleetConfig,
    solver: SolverOptions,
    first: date,
    last: date,
    workers: int,
    progress: TextIO,
) -> list[DayResult]:
    """Every day of the period in `workers` processes (in this one when 1), a progress
    line per day on `progress`; results in day order. Workers are spawned: a script calling
    this with `workers > 1` guards its entry point with `if __name__ == "__main__":`."""
    days = period_days(first, last)
    reporter = Progress(len(days), progress)
    if workers <= 1 or len(days) == 1:
        results = []
        for day in days:
            results.append(generated_day(config, solver, day))
            reporter.done(results[-1])
        return results
    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(generated_day, config, solver, day) for day in days]
        for future in as_completed(futures):
            reporter.done(future.result())
        return [future.result() for future in futures]


class Progress:
    """One line per finished day: the day, each strategy's emissions, elapsed time, ETA."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total = total
        self.out = out
        self.started = time.monotonic()
        self.count = 0

    def done(self, day: DayResult) -> None:
        self.count += 1
        elapsed_s = time.monotonic() - self.started
        eta_s = elapsed_s / self.count * (self.total - self.count)
        emissions = "  ".join(
            f"{name} {s.kpis.emissions_kg:8.2f} kg" if s.kpis else f"{name} {s.status}"
            for name, s in day.strategies.items()
        )
        print(
            f"[{self.count:>{len(str(self.total))}}/{self.total}] {day.label}  {emissions}"
            f"  elapsed {_clock(elapsed_s)}  ETA {_clock(eta_s)}",
            file=self.out,
            flush=True,
        )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"
