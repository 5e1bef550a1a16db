"""The service's components and their checks, as `idlefleet doctor` reports them (OK, WARN or
FAIL with a detail), from what the service knows of itself: its readers (the broker), its
planner, its data sources and the OCPP stations. Doctor checks from a client machine over
the API; these are the same components seen from inside the service, at no extra cost."""

from __future__ import annotations

from dataclasses import dataclass

from idlefleet.queries.freshness import SourceFreshness
from idlefleet.queries.health import HealthView, Level
from idlefleet.queries.views import PlanViews


@dataclass(frozen=True)
class Finding:
    """What one check of one component found."""

    component: str
    check: str
    level: Level
    detail: str


def component_findings(
    health: HealthView, views: PlanViews | None, sources: tuple[SourceFreshness, ...]
) -> tuple[Finding, ...]:
    """Every check: the broker readers, dead letters, the planner and its notes, each data
    source's freshness (`idlefleet.queries.freshness`)."""
    return (
        _readers(health),
        _dead_letters(health),
        _planner(views),
        *(Finding("service", "degraded", Level.WARN, note) for note in health.notes),
        *(
            Finding("data", source.source, Level.WARN if source.stale else Level.OK, _said(source))
            for source in sources
        ),
    )


def _readers(health: HealthView) -> Finding:
    if health.reader_failure is not None:
        detail = f"a reader stopped: {health.reader_failure}"
        return Finding("broker", "readers", Level.FAIL, detail)
    if health.lag_records is None:
        return Finding("broker", "readers", Level.WARN, "reading; lag not known yet")
    return Finding("broker", "readers", Level.OK, f"reading, {health.lag_records} records behind")


def _dead_letters(health: HealthView) -> Finding:
    count = health.dead_letters
    if not count:
        return Finding("broker", "dead letters", Level.OK, "none since start")
    newest = health.recent_dead_letters[0].reason if health.recent_dead_letters else ""
    detail = f"{count} since start" + (f"; newest: {newest}" if newest else "")
    return Finding("broker", "dead letters", Level.WARN, detail)


def _planner(views: PlanViews | None) -> Finding:
    if views is None:
        return Finding("planner", "plan", Level.FAIL, "no plan yet")
    shortfall_kwh = sum(views.site_shortfall_kwh.values())
    detail = f"revision {views.revision}: {views.plan.status}"
    if shortfall_kwh > 0:
        return Finding("planner", "plan", Level.WARN, f"{detail}, {shortfall_kwh:.1f} kWh short")
    return Finding("planner", "plan", Level.OK, f"{detail}, every car charged")


def _said(source: SourceFreshness) -> str:
    if source.detail:
        return source.detail
    assert source.newest is not None and source.age_s is not None
    return f"{source.newest:%Y-%m-%d %H:%M} UTC, {source.age_s / 60:.0f} min old"
