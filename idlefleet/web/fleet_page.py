"""The Fleet page: each site's cars and its plan over the horizon (peak import, headroom,
PV, shortfall), the fleet's import against its caps, each region's carbon intensity
forecast, a page of sites charted slot by slot, and how fresh each data source is; read from
a `FleetBackend` and the service's `HealthView` on every request (the console keeps
nothing), from the per-plan aggregates of `PlanViews` (no walk over the cars)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from idlefleet.queries.freshness import SourceFreshness, freshness
from idlefleet.queries.health import HealthView
from idlefleet.queries.ports import FleetBackend
from idlefleet.queries.views import FLEET, PlanViews, Scope
from idlefleet.web.charts import Chart, Series

#: Sites charted slot by slot on one Fleet page; the Site page charts each in full.
SITES_CHARTED_PER_PAGE = 8


@dataclass(frozen=True)
class SiteRow:
    """A site: region, grid limit [kW], cars parked and taking part now [count], cars
    computing in the current slot [count] (None: no plan covers now), and over the plan's
    horizon (None without a plan): what its cars will lack at departure [kWh], its highest
    planned import [kW] and when, its least headroom under the cap [kW] and its PV [kWh]."""

    site_id: str
    region: str
    grid_limit_kw: float
    parked: int
    participating: int
    computing_now: int | None
    shortfall_kwh: float | None
    peak_import_kw: float | None
    peak_at: datetime | None
    least_headroom_kw: float | None
    pv_kwh: float | None

    @property
    def over_cap(self) -> bool:
        """The plan imports above the cap in some slot, by more than rounding [kW]."""
        return self.least_headroom_kw is not None and self.least_headroom_kw < -1e-6


@dataclass(frozen=True)
class FleetPage:
    """Every site, and how fresh the data is: the status's time, the newest telemetry, and
    the slot the current plan starts at with its revision (None before the first plan)."""

    as_of: datetime
    latest_telemetry: datetime | None
    plan_start: datetime | None
    plan_revision: int | None
    plan_status: str | None
    vehicles_known: int
    sites: tuple[SiteRow, ...]
    #: The whole fleet's import against the sum of its caps (None before the first plan).
    fleet_chart: Chart | None
    #: Each region's carbon intensity over the plan's horizon (None before the first plan).
    intensity: Chart | None
    #: This page's sites charted slot by slot (`SITES_CHARTED_PER_PAGE` from `chart_page`).
    site_charts: tuple[Chart, ...]
    chart_page: int  # 1-based
    chart_pages: int
    sources: tuple[SourceFreshness, ...]


def fleet_page(backend: FleetBackend, health: HealthView, chart_page: int = 1) -> FleetPage:
    """The Fleet page from the backend's status, its newest plan's views and the service's
    health (for the freshness of the sources), with the sites of `chart_page` charted (a
    page out of range shows the nearest)."""
    status = backend.fleet_status()
    views = backend.board.views
    now = backend.now()
    slot = None if views is None else _current_slot(views, now)
    rows = tuple(
        _site_row(
            site.site.site_id,
            site.site.region,
            site.site.grid_limit_kw,
            site.vehicles_parked,
            site.vehicles_participating,
            views,
            slot,
        )
        for site in status.sites
    )
    pages = max(1, -(-len(rows) // SITES_CHARTED_PER_PAGE))
    chart_page = min(max(chart_page, 1), pages)
    first = (chart_page - 1) * SITES_CHARTED_PER_PAGE
    charted = rows[first : first + SITES_CHARTED_PER_PAGE]
    return FleetPage(
        as_of=status.as_of,
        latest_telemetry=status.latest_telemetry,
        plan_start=None if views is None else views.snapshot.scenario.horizon.start,
        plan_revision=None if views is None else views.revision,
        plan_status=None if views is None else str(views.plan.status),
        vehicles_known=status.vehicles_known,
        sites=rows,
        fleet_chart=None if views is None else _fleet_chart(views),
        intensity=None if views is None else _intensity_chart(views),
        site_charts=()
        if views is None
        else tuple(
            chart for row in charted if (chart := site_chart(views, row.site_id)) is not None
        ),
        chart_page=chart_page,
        chart_pages=pages,
        sources=freshness(
            health, status.latest_telemetry, views, now, backend.settings.slot_minutes
        ),
    )


def _intensity_chart(views: PlanViews) -> Chart:
    """Each region's carbon intensity per slot as the plan's scenario holds it [g/kWh]."""
    scenario = views.snapshot.scenario
    return Chart(
        id="intensity",
        title="Carbon intensity forecast per region",
        unit="g/kWh",
        slot_starts=_slot_starts(views),
        series=[
            Series(f"{region.id} [g/kWh]", list(region.intensity_g_per_kwh))
            for region in scenario.regions
        ],
        decimals=0,
    )


def _slot_starts(views: PlanViews) -> list[datetime]:
    return [datetime.fromtimestamp(start_s, UTC) for start_s in views.slot_start_s]


def _fleet_chart(views: PlanViews) -> Chart:
    """The fleet's planned import against the sum of its sites' caps, charging and compute
    per slot [kW]."""
    return _import_chart(
        views, FLEET, "The fleet: planned import against its sites' caps, charging and compute"
    )


def site_chart(views: PlanViews, site_id: str) -> Chart | None:
    """A site's planned import against its cap, charging, compute and PV per slot [kW]
    (None: the plan does not cover the site)."""
    scope = Scope("site", site_id)
    if scope not in views.series:
        return None
    pv_kw = list(views.snapshot.scenario.site_by_id[site_id].pv_kw)
    title = f"{site_id}: planned import, cap, charging, compute and PV"
    return _import_chart(views, scope, title, Series("PV [kW]", pv_kw))


def _import_chart(views: PlanViews, scope: Scope, title: str, *more: Series) -> Chart:
    """A scope's planned import against its cap(s), charging and compute per slot [kW]."""
    series = views.series[scope]
    return Chart(
        id=f"import-{scope.id or scope.kind}",
        title=title,
        unit="kW",
        slot_starts=_slot_starts(views),
        series=[
            Series("Import [kW]", series.grid_import_kw or [0.0] * len(views.slot_start_s), "area"),
            Series(
                "Caps [kW]" if scope == FLEET else "Cap [kW]",
                views.flexibility[scope].import_cap_kw,
                "limit",
            ),
            Series("Charging [kW]", series.charge_power_kw),
            Series("Compute [kW]", series.compute_power_kw),
            *more,
        ],
    )


def _current_slot(views: PlanViews, now: datetime) -> int | None:
    """The plan's slot holding `now`, or None when `now` is outside its horizon."""
    horizon = views.snapshot.scenario.horizon
    slot = int((now - horizon.start) / horizon.slot_delta) if now >= horizon.start else -1
    return slot if 0 <= slot < len(views.slot_start_s) else None


def _site_row(
    site_id: str,
    region: str,
    grid_limit_kw: float,
    parked: int,
    participating: int,
    views: PlanViews | None,
    slot: int | None,
) -> SiteRow:
    scope = Scope("site", site_id)
    if views is None or scope not in views.series:
        return SiteRow(
            site_id,
            region,
            grid_limit_kw,
            parked,
            participating,
            None,
            None,
            None,
            None,
            None,
            None,
        )
    series = views.series[scope]
    imports_kw = np.asarray(series.grid_import_kw or [0.0] * len(views.slot_start_s))
    headroom_kw = np.asarray(views.flexibility[scope].import_cap_kw) - imports_kw
    peak = int(np.argmax(imports_kw))
    slot_h = views.snapshot.scenario.horizon.slot_minutes / 60
    return SiteRow(
        site_id,
        region,
        grid_limit_kw,
        parked,
        participating,
        computing_now=None if slot is None else series.running_vehicles[slot],
        shortfall_kwh=views.site_shortfall_kwh.get(site_id),
        peak_import_kw=float(imports_kw[peak]),
        peak_at=datetime.fromtimestamp(views.slot_start_s[peak], UTC),
        least_headroom_kw=float(headroom_kw.min()),
        pv_kwh=float(sum(views.snapshot.scenario.site_by_id[site_id].pv_kw)) * slot_h,
    )
