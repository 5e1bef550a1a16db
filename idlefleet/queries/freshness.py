"""How fresh each source of the service's data is: broker lag, newest telemetry, newest
solar and intensity forecasts, the last plan, and the OCPP stations, each with its age
against the service's clock and a stale mark past its threshold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from idlefleet.queries.health import HealthView
from idlefleet.queries.views import PlanViews

#: Telemetry and the plan are stale after this many slots without a newer one [count].
STALE_AFTER_SLOTS = 2
#: A forecast is stale this long after it was issued.
FORECAST_STALE_AFTER = timedelta(hours=12)
#: The readers are stale this many records behind the broker [count].
STALE_LAG_RECORDS = 1000


@dataclass(frozen=True)
class SourceFreshness:
    """One source: its newest time [UTC] (None: none yet or no time applies), its age at
    `now` [s] (None without a time), whether it is stale, and what else to say."""

    source: str
    newest: datetime | None
    age_s: float | None
    stale: bool
    detail: str


def freshness(
    health: HealthView,
    latest_telemetry: datetime | None,
    views: PlanViews | None,
    now: datetime,
    slot_minutes: int,
) -> tuple[SourceFreshness, ...]:
    """Every source's freshness at `now` [UTC], slots of `slot_minutes` [min]."""
    slots_stale = timedelta(minutes=slot_minutes * STALE_AFTER_SLOTS)
    lag = health.lag_records
    chargers = health.chargers
    plan_start = None if views is None else views.snapshot.scenario.horizon.start
    return (
        SourceFreshness(
            "Broker lag",
            None,
            None,
            lag is None or lag > STALE_LAG_RECORDS,
            "not known yet" if lag is None else f"{lag} records behind",
        ),
        _timed("Last telemetry", latest_telemetry, now, slots_stale, "no telemetry read"),
        _timed(
            "Last solar forecast",
            health.newest_solar_forecast,
            now,
            FORECAST_STALE_AFTER,
            "no solar forecast read",
        ),
        _timed(
            "Last intensity forecast",
            health.newest_intensity_forecast,
            now,
            FORECAST_STALE_AFTER,
            "no intensity forecast read",
        ),
        _timed(
            "Last plan",
            plan_start,
            now,
            slots_stale,
            "no plan yet" if views is None else f"revision {views.revision}, {views.plan.status}",
        ),
        SourceFreshness(
            "Charger connections",
            None,
            None,
            chargers is not None and chargers.connected < chargers.configured,
            "not running"
            if chargers is None
            else f"{chargers.connected} of {chargers.configured} stations connected",
        ),
    )


def _timed(
    source: str, newest: datetime | None, now: datetime, stale_after: timedelta, missing: str
) -> SourceFreshness:
    if newest is None:
        return SourceFreshness(source, None, None, True, missing)
    age = now - newest
    return SourceFreshness(source, newest, age.total_seconds(), age > stale_after, "")
