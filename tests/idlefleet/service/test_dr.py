"""Demand response on the running service: decide from its rolling scenario, apply, re-plan."""

from __future__ import annotations

from pathlib import Path

from idlefleet.service.dr import ServiceReadings, service_decider
from idlefleet.service.planner import PlannerService
from idlefleet.settings import PlannerSettings
from idlefleet.sites import load_sites
from streams.clients import KafkaSettings
from streams.messages import DemandResponseEvent
from streams.producer import Publisher
from tests.idlefleet.service.factories import SLOT, T0, forecast, parked, write_sites
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
    service = PlannerService(kafka_settings, settings, sites).start()
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
