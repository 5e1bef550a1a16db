"""The Fleet page's rows over a local backend: every site, its cars, and its plan's import
against its cap slot by slot, as the plan's views hold them."""

from __future__ import annotations

from datetime import timedelta

from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.views import Scope
from idlefleet.sim.clock import SteppedClock
from idlefleet.web.fleet_page import fleet_page
from streams.catalog import T0
from tests.idlefleet.conftest import SETTINGS, SITES, fill


def test_every_site_with_its_cars_and_plan(backend: LocalBackend) -> None:
    page = fleet_page(backend)
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
        series = views.series[Scope("site", site.site_id)]
        assert [row.import_kw for row in site.slots] == series.grid_import_kw
        assert [row.computing for row in site.slots] == series.running_vehicles
        assert all(row.cap_kw <= config.grid_limit_kw + 1e-9 for row in site.slots)
        assert site.computing_now == series.running_vehicles[0]  # the clock is at T0
        assert site.slots[1].start - site.slots[0].start == timedelta(minutes=15)


def test_before_the_first_plan_no_slots_and_no_plan_time(clock: SteppedClock) -> None:
    fresh = LocalBackend(SITES, SETTINGS, clock)
    fill(fresh.state)
    page = fleet_page(fresh)
    assert page.plan_start is None and page.plan_revision is None
    assert all(site.slots == () and site.computing_now is None for site in page.sites)
    assert sum(site.parked for site in page.sites) > 0
    assert clock() == T0
