"""The Fleet page's rows over a local backend: every site, its cars, and its plan's import
against its cap and PV slot by slot, its shortfall, each region's intensity forecast, and the
freshness of each source, as the plan's views and the service's health hold them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from idlefleet.queries.health import HealthView
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.views import FLEET, Scope
from idlefleet.sim.clock import SteppedClock
from idlefleet.web.fleet_page import fleet_page, site_chart
from streams.catalog import T0
from tests.idlefleet.conftest import SETTINGS, SITES, fill

#: A service that noticed nothing: no forecasts read, no lag known, no dead letters.
QUIET = HealthView((), 0)


def test_every_site_with_its_cars_and_plan(backend: LocalBackend) -> None:
    page = fleet_page(backend, QUIET)
    views = backend.board.views
    assert views is not None
    assert [site.site_id for site in page.sites] == [s.site_id for s in SITES]
    assert page.plan_revision == views.revision
    assert page.plan_start == views.snapshot.scenario.horizon.start
    status = {s.site.site_id: s for s in backend.fleet_status().sites}
    for site, config in zip(page.sites, SITES, strict=True):
        assert site.grid_limit_kw == config.grid_limit_kw
        assert site.parked == status[site.site_id].vehicles_parked
        assert site.participating == status[site.site_id].vehicles_participating
        scope = Scope("site", site.site_id)
        series, caps = views.series[scope], views.flexibility[scope].import_cap_kw
        assert series.grid_import_kw is not None
        assert site.peak_import_kw == max(series.grid_import_kw)
        assert site.peak_at is not None
        peak = int((site.peak_at - page.plan_start) / timedelta(minutes=15))
        assert series.grid_import_kw[peak] == site.peak_import_kw
        assert site.least_headroom_kw == pytest.approx(
            min(c - i for c, i in zip(caps, series.grid_import_kw, strict=True))
        )
        assert not site.over_cap
        assert site.computing_now == series.running_vehicles[0]  # the clock is at T0
        scenario_site = views.snapshot.scenario.site_by_id[site.site_id]
        assert site.pv_kwh == pytest.approx(sum(scenario_site.pv_kw) * 0.25)
        chart = site_chart(views, site.site_id)
        assert chart is not None and chart.series[-1].label == "PV [kW]"
        assert list(chart.series[0].values) == series.grid_import_kw
        assert chart.slot_starts[1] - chart.slot_starts[0] == timedelta(minutes=15)
        assert site.shortfall_kwh == sum(
            views.plan.vehicles[v.id].shortfall_kwh
            for v in views.snapshot.scenario.vehicles
            if v.site == site.site_id
        )


def test_a_page_of_sites_charted_and_the_fleet_against_its_caps(backend: LocalBackend) -> None:
    page = fleet_page(backend, QUIET, chart_page=7)  # out of range: the last page
    views = backend.board.views
    assert views is not None and page.fleet_chart is not None
    assert page.chart_page == page.chart_pages == 1
    assert [c.id for c in page.site_charts] == [f"import-{s.site_id}" for s in SITES]
    assert list(page.fleet_chart.series[0].values) == views.series[FLEET].grid_import_kw
    assert list(page.fleet_chart.series[1].values) == views.flexibility[FLEET].import_cap_kw


def test_each_regions_intensity_forecast_as_the_plan_used_it(backend: LocalBackend) -> None:
    page = fleet_page(backend, QUIET)
    views = backend.board.views
    assert views is not None and page.intensity is not None
    regions = views.snapshot.scenario.regions
    assert [series.label for series in page.intensity.series] == [
        f"{region.id} [g/kWh]" for region in regions
    ]
    for series, region in zip(page.intensity.series, regions, strict=True):
        assert list(series.values) == list(region.intensity_g_per_kwh)
    assert len(page.intensity.slot_starts) == views.snapshot.scenario.horizon.slots


def test_every_source_with_its_age_and_stale_mark(backend: LocalBackend) -> None:
    page = fleet_page(backend, QUIET)
    sources = {source.source: source for source in page.sources}
    assert sources["Last plan"].newest == page.plan_start and not sources["Last plan"].stale
    assert sources["Last telemetry"].newest == backend.fleet_status().latest_telemetry
    assert sources["Last solar forecast"].stale  # the quiet service read none
    assert sources["Broker lag"].detail == "not known yet"
    assert sources["Charger connections"].detail == "not running"


def test_before_the_first_plan_no_slots_and_no_plan_time(clock: SteppedClock) -> None:
    fresh = LocalBackend(SITES, SETTINGS, clock)
    fill(fresh.state)
    page = fleet_page(fresh, QUIET)
    assert page.plan_start is None and page.plan_revision is None
    assert all(site.peak_import_kw is None and site.computing_now is None for site in page.sites)
    assert all(site.shortfall_kwh is None for site in page.sites) and page.intensity is None
    assert page.site_charts == () and page.fleet_chart is None
    assert sum(site.parked for site in page.sites) > 0
    assert clock() == T0
