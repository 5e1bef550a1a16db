"""Cars the plan does not cover share what the site's connection and the caps in force leave,
most urgent first, and never more: with no plan at all (no intensity signal yet), under a burst
of arrivals, and under a DR cap of 0 kW."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from idlefleet.service.dispatches import headroom, laxity_h, owner_first
from idlefleet.service.planner import PlannerService
from idlefleet.settings import PlannerSettings
from idlefleet.sites import SiteConfig, load_sites
from streams.clients import KafkaSettings
from streams.messages import DemandResponseEvent, Telemetry
from tests.idlefleet.service.factories import T0, assignments_at, write_sites
from tests.streams import factories

SITE = SiteConfig(
    site_id="depot-a",
    region="DE",
    timezone="Europe/Berlin",
    latitude_deg=52.5,
    longitude_deg=13.4,
    grid_limit_kw=55.0,
)


def car(vehicle_id: str, leaves_in_h: float, energy_kwh: float = 20.0) -> Telemetry:
    """An 11 kW car at depot-a owed 40 kWh at departure."""
    return factories.telemetry(
        vehicle_id,
        event_time=T0 - timedelta(minutes=1),
        site_id="depot-a",
        energy_kwh=energy_kwh,
        reserve_kwh=0.0,
        target_kwh=40.0,
        charger_kw=11.0,
        expected_departure=T0 + timedelta(hours=leaves_in_h),
    )


def cap(max_import_kw: float, **target: str) -> DemandResponseEvent:
    return factories.dr_event(
        "cap", end=T0 + timedelta(hours=1), max_import_kw=max_import_kw, **target
    )


def test_a_burst_shares_the_connection_most_urgent_first() -> None:
    burst = [car(f"car-{k}", leaves_in_h=1 + k) for k in range(10)]  # 10 x 11 kW on 55 kW
    powers = {
        d.vehicle_id: d.charge_power_kw
        for d in owner_first(burst, [SITE], headroom([SITE], [], T0, {}), T0, 15)
    }
    assert sum(powers.values()) == pytest.approx(55.0)
    urgent = sorted(burst, key=lambda c: laxity_h(c, T0))[:5]
    assert {c.vehicle_id for c in urgent} == {f"car-{k}" for k in range(5)}
    assert all(powers[c.vehicle_id] == pytest.approx(11.0) for c in urgent)


def test_planned_import_and_caps_in_force_come_off_the_room() -> None:
    room = headroom([SITE], [cap(30.0, site_id="depot-a")], T0, {"depot-a": 20.0})
    powers = [
        d.charge_power_kw for d in owner_first([car("a", 1), car("b", 2)], [SITE], room, T0, 15)
    ]
    assert powers == pytest.approx([10.0, 0.0])
    later = headroom([SITE], [cap(30.0, site_id="depot-a")], T0 + timedelta(hours=2), {})
    assert later.site_kw["depot-a"] == 55.0  # the cap is over


def test_a_region_cap_binds_the_sum_over_its_sites() -> None:
    other = SITE.model_copy(update={"site_id": "depot-b"})
    cars = [car("a", 1), car("b", 1).model_copy(update={"site_id": "depot-b"})]
    room = headroom([SITE, other], [cap(15.0, site_id=None, region="DE")], T0, {})
    assert sum(d.charge_power_kw for d in owner_first(cars, [SITE, other], room, T0, 15)) == (
        pytest.approx(15.0)
    )


def test_a_car_that_owes_nothing_draws_nothing() -> None:
    full = car("full", 1, energy_kwh=40.0)
    (dispatch,) = owner_first([full], [SITE], headroom([SITE], [], T0, {}), T0, 15)
    assert dispatch.charge_power_kw == 0.0


def test_without_a_plan_the_service_keeps_the_burst_under_the_connection_and_a_zero_cap(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    # No intensity signal: nothing can be planned, so every car falls back.
    burst = [car(f"car-{k}", leaves_in_h=1 + k) for k in range(8)]
    factories.publish(kafka_settings, [*burst, cap(0.0, site_id="depot-a")])
    sites = load_sites(write_sites(tmp_path, ["depot-a"]))  # a 50 kW connection
    settings = PlannerSettings(group_id="planner", horizon_hours=2)
    service = PlannerService(kafka_settings, settings, sites, trust=None).start()
    try:
        report = service.tick(T0)
        assert report.replanned is None and len(report.fallback_vehicles) == 8
        assert [a.charge_power_kw for a in assignments_at(kafka_settings, T0)] == [0.0] * 8
        factories.publish(
            kafka_settings, [cap(0.0, site_id="depot-a").model_copy(update={"cancelled": True})]
        )
        slot = T0 + timedelta(minutes=15)
        service.tick(slot)
        powers = {a.vehicle_id: a.charge_power_kw for a in assignments_at(kafka_settings, slot)}
        assert sum(powers.values()) == pytest.approx(50.0)
        assert powers["car-0"] > 0 and powers["car-7"] == 0.0  # most urgent first
    finally:
        service.stop()
