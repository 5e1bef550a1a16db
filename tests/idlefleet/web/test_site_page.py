"""The Site page over a local backend: its cars' rows are the plan's arrays, cars come a
page at a time, DR caps show where they are in force, and an unknown site is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idlefleet.queries.errors import UnknownIdError
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.views import Scope
from idlefleet.web.site_page import HEAT_LEVELS, HeatCell, heat_level, site_page
from streams.catalog import T0
from streams.messages import DemandResponseEvent, MeasuredState, VehicleRecord

BERLIN = "berlin-depot"


def test_rows_are_the_plan_arrays_of_the_sites_cars(backend: LocalBackend) -> None:
    views = backend.board.views
    assert views is not None
    a = views.arrays
    page = site_page(backend, BERLIN)
    assert page.plan_revision == views.revision
    assert [car.vehicle_id for car in page.cars] == ["car-a", "car-b"]
    assert page.cars_total == 2 and page.pages == 1 and page.first_car == 1
    for car in page.cars:
        row = a.vehicle_row[car.vehicle_id]
        assert a.site_ids[a.site_of_vehicle[row]] == BERLIN
        assert [cell.charge_kw for cell in car.cells] == a.charge_kw[row].tolist()
        assert [cell.shards for cell in car.cells] == a.shards[row].tolist()
        assert [cell.parked for cell in car.cells] == a.usable[row].tolist()
        assert car.path.floor_kwh == a.floor_kwh[row]
        assert car.path.lowest_kwh >= car.path.floor_kwh - 1e-6
        assert car.marks is None  # version-1 telemetry: the plan keeps no note
    assert len(page.slot_starts) == len(views.slot_start_s)
    assert page.slot_starts[1] - page.slot_starts[0] == timedelta(minutes=15)
    car_a = page.cars[0].path
    assert car_a.target_kwh == 50.0 and car_a.leaves_in_horizon
    assert car_a.end_kwh >= 50.0 - 1e-3 and not car_a.below_target
    assert not page.cars[1].path.leaves_in_horizon  # car-b gave no departure
    running = [cell for car in page.cars for cell in car.cells if cell.shards]
    assert running, "the job's shards run at Berlin"
    assert all(cell.css_class.endswith(" run") for cell in running)


def test_import_chart_is_the_sites_series(backend: LocalBackend) -> None:
    views = backend.board.views
    assert views is not None
    chart = site_page(backend, BERLIN).import_chart
    assert chart is not None
    series = {s.label: s for s in chart.series}
    planned = views.series[Scope("site", BERLIN)]
    assert series["Import [kW]"].values == planned.grid_import_kw
    assert series["Charging [kW]"].values == planned.charge_power_kw
    assert series["Compute [kW]"].values == planned.compute_power_kw
    assert series["Grid limit [kW]"].kind == "limit"
    assert set(series["Grid limit [kW]"].values) == {30.0}
    assert set(series["Site DR cap [kW]"].values) == {None}
    assert max(v or 0.0 for v in series["PV [kW]"].values) == 8.0  # Berlin has PV
    london = site_page(backend, "london-depot").import_chart
    assert london is not None
    assert "PV [kW]" not in {s.label for s in london.series}


def test_a_site_dr_cap_shows_in_the_slots_it_covers(backend: LocalBackend) -> None:
    backend.apply_dr_event(
        DemandResponseEvent(
            event_id="dr-1",
            site_id=BERLIN,
            start=T0 + timedelta(hours=1),
            end=T0 + timedelta(hours=2),
            max_import_kw=5.0,
        )
    )
    page = site_page(backend, BERLIN)
    assert page.dr_event_ids == ("dr-1",)
    assert page.import_chart is not None
    caps = {s.label: s for s in page.import_chart.series}["Site DR cap [kW]"].values
    assert caps == [None] * 4 + [5.0] * 4 + [None] * (len(caps) - 8)


def test_a_region_dr_cap_is_drawn_for_the_regions_sites(backend: LocalBackend) -> None:
    backend.apply_dr_event(
        DemandResponseEvent(
            event_id="dr-de",
            region="DE",
            start=T0,
            end=T0 + timedelta(minutes=30),
            max_import_kw=12.0,
        )
    )
    chart = site_page(backend, BERLIN).import_chart
    assert chart is not None
    caps = {s.label: s for s in chart.series}["Region DE DR cap, all its sites [kW]"]
    assert caps.kind == "limit"
    assert caps.values[:3] == [12.0, 12.0, None]
    london = site_page(backend, "london-depot").import_chart
    assert london is not None
    assert not any(s.label.startswith("Region") for s in london.series)


def test_a_cells_class_says_parked_level_and_compute() -> None:
    assert HeatCell(False, 0.0, 0, 0).css_class == "away"
    assert HeatCell(False, 0.0, 0, 0).text == ""
    assert HeatCell(True, 0.0, 0, 0).css_class == "h0"
    assert HeatCell(True, 0.0, 0, 0).text == "0"
    assert HeatCell(True, 7.4, 5, 2).css_class == "h5 run"
    assert HeatCell(True, 7.4, 5, 2).text == "7.4"


#: car-e at Berlin, registered: no owner preferences, and its energy known only by estimate.
ESTIMATED_CAR = VehicleRecord(
    vehicle_id="car-e", updated_at=T0, battery_kwh=60.0, charger_kw=7.4, compute_kw=0.2
)


def estimated_car() -> tuple[MeasuredState, MeasuredState]:
    """car-e's measurements: read 90 min before T0, then its charger metered 4 kWh."""
    return (
        MeasuredState(
            vehicle_id="car-e",
            event_time=T0 - timedelta(minutes=90),
            source="car",
            site_id=BERLIN,
            plugged_in=True,
            energy_kwh=20.0,
            session_id="tx-1",
            session_energy_kwh=0.0,
        ),
        MeasuredState(
            vehicle_id="car-e",
            event_time=T0 - timedelta(minutes=5),
            source="ocpp:cs-1/1",
            session_id="tx-1",
            session_energy_kwh=4.0,
        ),
    )


def test_an_estimated_and_stale_car_is_marked(backend: LocalBackend) -> None:
    for record in estimated_car():
        backend.state.apply_measured(record)
    backend.register_vehicle(ESTIMATED_CAR)
    backend.replan()
    cars = {car.vehicle_id: car for car in site_page(backend, BERLIN).cars}
    marks = cars["car-e"].marks
    assert marks is not None
    assert marks.estimated and marks.stale and marks.metered_since_kwh == 4.0
    assert marks.reading_age_min == 90.0
    assert any("owner preferences" in lack for lack in marks.lacks)
    assert cars["car-a"].marks is None


def test_cars_come_a_page_at_a_time(backend: LocalBackend) -> None:
    first = site_page(backend, BERLIN, page=1, per_page=1)
    second = site_page(backend, BERLIN, page=2, per_page=1)
    assert (first.pages, first.page, first.first_car) == (2, 1, 1)
    assert (second.page, second.first_car) == (2, 2)
    assert [c.vehicle_id for c in first.cars] == ["car-a"]
    assert [c.vehicle_id for c in second.cars] == ["car-b"]
    assert site_page(backend, BERLIN, page=9, per_page=1).page == 2  # clamped
    assert site_page(backend, BERLIN, page=0, per_page=1).page == 1


def test_the_chosen_car_is_charted_else_the_first(backend: LocalBackend) -> None:
    page = site_page(backend, BERLIN, car="car-b")
    assert page.chosen is not None and page.chosen.vehicle_id == "car-b"
    assert page.car_chart is not None and page.car_chart.id == "car-energy"
    labels = [s.label for s in page.car_chart.series]
    assert labels == ["Energy [kWh]", "Floor [kWh]", "Target [kWh]"]
    # a car on another page of the site is charted too; one of another site is not
    assert site_page(backend, BERLIN, car="car-b", per_page=1).chosen.vehicle_id == "car-b"  # type: ignore[union-attr]
    other = site_page(backend, BERLIN, car="car-c")
    assert other.chosen is not None and other.chosen.vehicle_id == "car-a"


def test_unknown_site_is_refused(backend: LocalBackend) -> None:
    with pytest.raises(UnknownIdError, match="no-such-depot"):
        site_page(backend, "no-such-depot")


@given(
    charger_kw=st.floats(0.1, 350.0),
    low=st.floats(0.0, 1.2),
    high=st.floats(0.0, 1.2),
)
def test_heat_level_grows_with_power_and_stays_in_range(
    charger_kw: float, low: float, high: float
) -> None:
    low, high = sorted((low, high))
    low_level = heat_level(low * charger_kw, charger_kw)
    high_level = heat_level(high * charger_kw, charger_kw)
    assert 0 <= low_level <= high_level <= HEAT_LEVELS
    assert heat_level(0.0, charger_kw) == 0
    assert heat_level(charger_kw, charger_kw) == HEAT_LEVELS
