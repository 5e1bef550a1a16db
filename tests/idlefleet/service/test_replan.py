"""The service re-plans at the next tick when an owner changes what they ask for, and when a
car's measured energy leaves the plan's path by more than the drift tolerance."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from idlefleet.service.planner import PlannerService
from idlefleet.settings import PlannerSettings
from idlefleet.sites import load_sites
from streams.clients import KafkaSettings
from tests.idlefleet.service.factories import SLOT, T0, forecast, parked, write_sites
from tests.streams import factories


def test_changed_wishes_and_energy_drift_trigger_a_replan(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    car = parked("car-0", "depot-a")
    factories.publish(kafka_settings, [forecast(), car])
    sites = load_sites(write_sites(tmp_path, ["depot-a"]))
    settings = PlannerSettings(group_id="planner", horizon_hours=2, replan_every_slots=100)
    service = PlannerService(kafka_settings, settings, sites, trust=None).start()
    try:
        assert service.tick(T0).replanned is not None
        assert service.tick(T0 + SLOT).replanned is None  # nothing changed

        sooner = car.model_copy(
            update={
                "event_time": T0 + SLOT + timedelta(minutes=1),
                "expected_departure": T0 + timedelta(hours=1),
            }
        )
        factories.publish(kafka_settings, [sooner])
        replanned = service.tick(T0 + 2 * SLOT).replanned
        assert replanned is not None and "wishes-changed" in replanned.reasons

        assert service.current_plan is not None
        drained = sooner.model_copy(
            update={
                "event_time": T0 + 2 * SLOT + timedelta(minutes=1),
                "energy_kwh": sooner.energy_kwh - 5.0,  # past the 1 kWh / 2 % tolerance
            }
        )
        factories.publish(kafka_settings, [drained])
        replanned = service.tick(T0 + 3 * SLOT).replanned
        assert replanned is not None and replanned.reasons == ("energy-drift",)
    finally:
        service.stop()
