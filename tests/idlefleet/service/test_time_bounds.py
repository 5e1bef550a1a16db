"""A record dated in the future cannot take a car over: the service dead-letters it, keeps the
car's real reports, and a forged far-future grid signal cannot pin its region."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from idlefleet.service.planner import PlannerService
from idlefleet.settings import PlannerSettings
from idlefleet.sites import load_sites
from streams.clients import KafkaSettings
from tests.idlefleet.service.factories import T0, forecast, parked, write_sites
from tests.streams import factories

FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


def test_future_dated_telemetry_and_grid_signals_are_dead_lettered(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    real = parked("car-0", "depot-a")
    forged = real.model_copy(
        update={"event_time": FAR_FUTURE, "reserve_kwh": 0.0, "target_kwh": 0.0}
    )
    pinned = forecast().model_copy(update={"issued_at": FAR_FUTURE})
    factories.publish(kafka_settings, [forecast(), real, forged, pinned])
    sites = load_sites(write_sites(tmp_path, ["depot-a"]))
    settings = PlannerSettings(group_id="planner", horizon_hours=2)
    service = PlannerService(kafka_settings, settings, sites, trust=None).start()
    try:
        assert service.catch_up()
        status = service.status()
        assert status.dead_letters == 2
        assert status.vehicles["car-0"] == real
        assert service.state.grid["DE"].issued_at == forecast().issued_at
        later = real.model_copy(
            update={"event_time": T0 + timedelta(minutes=10), "energy_kwh": real.energy_kwh + 1}
        )
        factories.publish(kafka_settings, [later])
        assert service.catch_up()
        assert service.status().vehicles["car-0"] == later  # real reports still count
    finally:
        service.stop()
