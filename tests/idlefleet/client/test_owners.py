"""The SDK's owner and registry calls against the real service: an owner merges a change into
its car's preferences, admins register cars, viewers list them, and a plan summary's text
names the cars whose data lacks something or is estimated."""

from __future__ import annotations

from datetime import timedelta

import pytest

from idlefleet.api.auth import Role
from idlefleet.client.fleet import FleetClient, FleetError, VehicleRecord
from idlefleet.client.tables import owner_text, plan_summary_text, vehicle_text, vehicles_text
from streams.catalog import T0
from streams.messages import MeasuredState
from tests.idlefleet.conftest import OWNED_CAR
from tests.idlefleet.live import LiveFleet, live  # noqa: F401  (the fixture)

SLOT = timedelta(minutes=15)


def client(fleet: LiveFleet, role: Role) -> FleetClient:
    return FleetClient(fleet.target, token=fleet.tokens.by_role[role], timeout_s=20)


def test_an_owner_changes_one_preference_and_keeps_the_rest(live: LiveFleet) -> None:  # noqa: F811
    live.clock.now = T0 + timedelta(minutes=5)
    with client(live, Role.OWNER) as owner:
        before = owner.owner_preferences(OWNED_CAR)
        assert before.updated_by == "" and before.expected_departure == T0 + timedelta(hours=3)
        after = owner.update_owner_preferences(
            OWNED_CAR, expected_departure=T0 + timedelta(hours=1), min_soc_frac=0.6
        )
        assert after.expected_departure == T0 + timedelta(hours=1)
        assert after.min_soc_frac == 0.6
        assert (after.reserve_kwh, after.target_kwh, after.participating) == (
            before.reserve_kwh,
            before.target_kwh,
            before.participating,
        )
        assert after.updated_at == T0 + timedelta(minutes=5)
        assert after.updated_by.startswith(f"owner-{OWNED_CAR}-")
        text = owner_text(after)
        assert "departure UTC: 2020-06-01 13:00" in text
        assert "compute:       yes, at any site, never below 60%" in text
        with pytest.raises(FleetError) as denied:
            owner.owner_preferences("car-b")
        assert denied.value.code == "PERMISSION_DENIED" and "'car-b'" in denied.value.details
        with pytest.raises(FleetError) as not_viewer:
            owner.fleet_status()
        assert not_viewer.value.code == "PERMISSION_DENIED"


def test_register_list_and_the_plans_data_notes(live: LiveFleet) -> None:  # noqa: F811
    # car-e: a reading, then its charger's meter; car-f: measured only (no registry entry)
    live.publish(
        MeasuredState(
            vehicle_id="car-e",
            event_time=T0 - timedelta(minutes=30),
            source="car",
            site_id="berlin-depot",
            plugged_in=True,
            energy_kwh=20.0,
        ),
        MeasuredState(
            vehicle_id="car-e",
            event_time=T0 - timedelta(minutes=2),
            source="ocpp:depot-cs-9/1",
            session_id="tx-1",
            session_energy_kwh=5.0,
        ),
        MeasuredState(
            vehicle_id="car-f",
            event_time=T0 - timedelta(minutes=1),
            source="ocpp:depot-cs-9/2",
            site_id="london-depot",
            plugged_in=True,
        ),
    )
    assert live.service.catch_up(20)
    with client(live, Role.ADMIN) as admin, client(live, Role.VIEWER) as viewer:
        stored = admin.register_vehicle(
            VehicleRecord("car-e", battery_kwh=60.0, charger_kw=7.4, compute_kw=0.2)
        )
        assert stored.updated_at == T0 and stored.charge_efficiency_frac == pytest.approx(0.92)
        assert "battery kWh:       60.0" in vehicle_text(stored)
        with pytest.raises(FleetError) as refused:
            viewer.register_vehicle(stored)
        assert refused.value.code == "PERMISSION_DENIED"

        entries = {e.vehicle_id: e for e in viewer.list_vehicles(page_size=2)}
        assert list(entries) == ["car-a", "car-b", "car-c", "car-d", "car-e", "car-f"]
        car_e = entries["car-e"].data
        assert car_e is not None and car_e.energy_source == "estimated"
        assert car_e.metered_since_kwh == 5.0 and car_e.energy_age_s == 30 * 60
        listed = vehicles_text(list(entries.values()))
        assert any(line.split()[:2] == ["car-a", "-"] for line in listed.splitlines())
        car_f_row = next(line for line in listed.splitlines() if line.startswith("car-f"))
        assert "fleet registry entry" in car_f_row

        live.tick(T0)
        plan = viewer.plan().plan
        assert [n.vehicle_id for n in plan.data_notes] == ["car-e", "car-f"]
        text = plan_summary_text(plan)
        assert "car data: 2 cars on sources, 2 to note" in text
        assert (
            "  car-e: lacks owner preferences (no consent to compute, no departure); "
            "energy estimated (reading 30 min old, +5.0 kWh metered since)"
        ) in text
        assert "  car-f: lacks fleet registry entry (battery, charger, compute)" in text
