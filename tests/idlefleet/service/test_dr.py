"""Demand response on the running service: decide from its rolling scenario, apply, re-plan."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from idlefleet.service.dr import ServiceReadings, decide_caps, service_decider
from idlefleet.service.planner import PlannerService
from idlefleet.settings import PlannerSettings
from idlefleet.sites import load_sites
from optimizer import Scenario, load_scenario
from streams.clients import KafkaSettings
from streams.messages import DemandResponseEvent
from streams.producer import Publisher
from tests.idlefleet.service.factories import SLOT, T0, forecast, parked, write_sites
from tests.optimizer.factories import car as opt_car
from tests.optimizer.factories import tiny, ts
from tests.streams import factories
from tests.streams.factories import dr_event, publish


def cap(event_id: str, max_import_kw: float) -> DemandResponseEvent:
    """A cap at depot-a for two hours from T0."""
    return dr_event(event_id, site_id="depot-a", max_import_kw=max_import_kw)


def test_the_service_honours_what_it_can_and_plans_under_the_applied_cap(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    # Two cars each owed 10 kWh within two hours: about 10.9 kW from the grid on average.
    publish(kafka_settings, [forecast(), parked("car-0", "depot-a"), parked("car-1", "depot-a")])
    sites = load_sites(write_sites(tmp_path, ["depot-a"]))
    settings = PlannerSettings(group_id="planner", horizon_hours=2, solver_time_limit_s=10)
    service = PlannerService(kafka_settings, settings, sites, trust=None).start()
    publisher = Publisher(kafka_settings)
    try:
        service.tick(T0)
        decider = service_decider(service, publisher, clock=lambda: T0)

        honourable = decider.decide([cap("evening", 15.0)])
        assert honourable.honour, honourable.reason
        stranding = decider.decide([cap("blackout", 5.0)])
        assert not stranding.honour
        assert "car-0" in stranding.reason and "car-1" in stranding.reason

        decider.apply([cap("evening", 15.0)])
        publisher.flush()
        report = service.tick(T0 + SLOT)
        assert report.replanned is not None and "dr-event" in report.replanned.reasons
        snapshot = service.current_plan
        assert snapshot is not None
        assert max(snapshot.plan.grid_import_kw["depot-a"]) <= 15.0 + 1e-6

        readings = ServiceReadings(service, clock=lambda: T0 + SLOT)
        assert readings.site_load_kw("depot-a") == snapshot.plan.grid_import_kw["depot-a"][0]
        assert 0.0 <= readings.site_flexibility_kw("depot-a") <= readings.site_load_kw("depot-a")

        decider.withdraw([cap("evening", 15.0)])
        publisher.flush()
        report = service.tick(T0 + 2 * SLOT)
        assert report.replanned is not None and "dr-event" in report.replanned.reasons
    finally:
        publisher.close()
        service.stop()


# --- decide_caps: by the shortfall a cap adds (a charging-only LP, no MILP) ----------------


def _scenario(grid_limit_kw: float = 1000.0) -> Scenario:
    """One hourly site, three slots; a car owed 20 kWh by slot 3 from an 11 kW charger."""
    cars = [opt_car("a", departure=3, soc_kwh=0.0, target_kwh=20.0, charger_kw=11.0)]
    return load_scenario(tiny([100.0] * 3, vehicles=cars, grid_limit_kw=grid_limit_kw))


def _cap(start_h: float, end_h: float, kw: float, event_id: str = "cap") -> DemandResponseEvent:
    start = datetime.fromisoformat(ts(start_h))
    return factories.dr_event(
        event_id,
        site_id="S",
        start=start,
        end=start + timedelta(hours=end_h - start_h),
        max_import_kw=kw,
    )


def test_a_cap_that_adds_no_shortfall_is_honoured() -> None:
    decision = decide_caps(_scenario(), [_cap(0, 1, 0.0)])  # two hours at 11 kW still make 20
    assert decision.honour, decision.reason


def test_a_cap_that_adds_shortfall_is_refused_naming_the_cars() -> None:
    decision = decide_caps(_scenario(), [_cap(0, 2, 0.0)])  # one hour left: 11 of 20 kWh
    assert not decision.honour
    assert "9.000 kWh short" in decision.reason and "a" in decision.reason


def test_a_cap_on_a_fleet_already_short_is_judged_by_what_it_adds() -> None:
    short = _scenario(grid_limit_kw=5.0)  # 15 of 20 kWh at best: 5 kWh short already
    assert decide_caps(short, [_cap(0, 1, 5.0)]).honour  # the limit binds anyway
    assert not decide_caps(short, [_cap(0, 1, 2.0)]).honour


def test_caps_beyond_the_horizon_are_refused_unless_configured() -> None:
    later = _cap(5, 6, 0.0)
    refused = decide_caps(_scenario(), [later])
    assert not refused.honour and "beyond the planning horizon" in refused.reason
    assert decide_caps(_scenario(), [later], accept_beyond_horizon=True).honour
