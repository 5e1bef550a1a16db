"""Owners and the fleet registry over a real channel to the real planner service: an owner
token sets its own car's preferences and the service re-plans with them; it may do nothing
else; bad fields name themselves; admins register cars, viewers list them; plans say what
each car's data lacks."""

from __future__ import annotations

from datetime import UTC, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from idlefleet.api.auth import Owner, Principal, Role, TokenTable
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from streams.catalog import T0
from streams.messages import MeasuredState
from tests.idlefleet.conftest import OWNED_CAR, rpc_error, stamp
from tests.idlefleet.live import LiveFleet, live  # noqa: F401  (the fixture)

SLOT = timedelta(minutes=15)
SECRET = "s3cret-token-0123456789"


def departure_of(fleet: LiveFleet, vehicle_id: str) -> object:
    assert fleet.service.current_plan is not None
    vehicles = {v.id: v for v in fleet.service.current_plan.scenario.vehicles}
    return vehicles[vehicle_id].departure


def test_an_owner_token_names_its_car() -> None:
    table = TokenTable.parse(f"{SECRET} owner:car-007 alice\n{'y' * 20} OWNER:car-8\n")
    assert table.principal_of(SECRET) == Principal("alice", Role.OWNER, "car-007")
    unnamed = table.principal_of("y" * 20)
    assert unnamed is not None and unnamed.vehicle_id == "car-8"
    assert unnamed.name.startswith("owner-car-8-") and "y" * 8 not in unnamed.name
    assert Role.OWNER < Role.VIEWER  # an owner token never passes as a viewer
    built = TokenTable([(SECRET, Owner("car-9"))]).principal_of(SECRET)
    assert built is not None and (built.role, built.vehicle_id) == (Role.OWNER, "car-9")
    with pytest.raises(ValueError, match="owner token needs its car"):
        TokenTable([(SECRET, Role.OWNER)])


def test_an_owner_moves_the_departure_and_the_service_replans_with_it(
    live: LiveFleet,  # noqa: F811
) -> None:
    first = live.tick(T0)
    assert first is not None
    assert departure_of(live, OWNED_CAR) == T0 + timedelta(hours=3)
    owner = live.metadata(Role.OWNER)

    live.clock.now = T0 + timedelta(minutes=5)
    request = pb.SetOwnerPreferencesRequest(
        vehicle_id=OWNED_CAR,
        reserve_kwh=10.0,
        target_kwh=50.0,
        expected_departure=stamp(1),
        participating=True,
    )
    stored = live.stub.SetOwnerPreferences(request, metadata=owner, timeout=20)
    assert stored.expected_departure.ToDatetime(tzinfo=UTC) == T0 + timedelta(hours=1)
    assert stored.updated_by.startswith(f"owner-{OWNED_CAR}-")
    assert stored.updated_at.ToSeconds() == int((T0 + timedelta(minutes=5)).timestamp())
    shown = live.stub.GetOwnerPreferences(
        pb.GetOwnerPreferencesRequest(vehicle_id=OWNED_CAR), metadata=owner, timeout=10
    )
    assert shown == stored

    replanned = live.tick(T0 + SLOT)
    assert replanned is not None and "wishes-changed" in replanned.reasons
    assert departure_of(live, OWNED_CAR) == T0 + timedelta(hours=1)
    plan = live.get_plan().plan
    assert plan.revision == 2 and plan.horizon_start.ToDatetime().minute == 15


def test_an_owner_token_may_do_nothing_else(live: LiveFleet) -> None:  # noqa: F811
    owner = live.metadata(Role.OWNER)
    stub = live.stub
    for call in (
        lambda: stub.GetOwnerPreferences(
            pb.GetOwnerPreferencesRequest(vehicle_id="car-b"), metadata=owner
        ),
        lambda: stub.SetOwnerPreferences(
            pb.SetOwnerPreferencesRequest(vehicle_id="car-b", participating=True),
            metadata=owner,
        ),
    ):
        error = rpc_error(call)
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
        assert error.details().startswith("vehicle_id: ") and "'car-b'" in error.details()
    denied = {
        "GetPlan": lambda: stub.GetPlan(pb.GetPlanRequest(vehicle_id=OWNED_CAR), metadata=owner),
        "GetFleetStatus": lambda: stub.GetFleetStatus(pb.GetFleetStatusRequest(), metadata=owner),
        "ListVehicles": lambda: stub.ListVehicles(pb.ListVehiclesRequest(), metadata=owner),
        "RegisterVehicle": lambda: stub.RegisterVehicle(
            pb.RegisterVehicleRequest(), metadata=owner
        ),
        "SubmitJob": lambda: stub.SubmitJob(pb.SubmitJobRequest(), metadata=owner),
    }
    for name, call in denied.items():
        error = rpc_error(call)
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED, name
        assert f"{name} needs role" in error.details() and "the token has owner" in error.details()
    viewer = live.metadata(Role.VIEWER)
    error = rpc_error(
        lambda: stub.GetOwnerPreferences(
            pb.GetOwnerPreferencesRequest(vehicle_id=OWNED_CAR), metadata=viewer
        )
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    # an operator may act for any car
    operator = live.metadata(Role.OPERATOR)
    other = stub.GetOwnerPreferences(
        pb.GetOwnerPreferencesRequest(vehicle_id="car-b"), metadata=operator, timeout=10
    )
    assert other.participating and other.target_kwh == 60.0  # from the car's telemetry
    assert not other.updated_by


#: Preferences (each with one bad field) and the field the refusal names.
BAD_PREFERENCES: list[tuple[dict[str, object], str]] = [
    ({"reserve_kwh": 40.0, "target_kwh": 30.0}, "target_kwh"),
    ({"reserve_kwh": -1.0}, "reserve_kwh"),
    ({"reserve_kwh": float("nan")}, "reserve_kwh"),
    ({"reserve_kwh": 500.0}, "reserve_kwh"),  # car-a's battery is 75 kWh
    ({"target_kwh": 90.0}, "target_kwh"),
    ({"expected_departure": stamp(-1)}, "expected_departure"),
    ({"expected_departure": Timestamp(seconds=2**62)}, "expected_departure"),
    ({"rules": pb.ConsentRules(only_at_sites=["berlin-depot", "mars"])}, "rules.only_at_sites[1]"),
    ({"rules": pb.ConsentRules(only_at_sites=["../x"])}, "rules.only_at_sites[0]"),
    ({"rules": pb.ConsentRules(min_soc_frac=1.5)}, "rules.min_soc_frac"),
    ({"rules": pb.ConsentRules(min_soc_frac=-0.1)}, "rules.min_soc_frac"),
    ({"vehicle_id": ""}, "vehicle_id"),
]
#: Registry entries (each with one bad field) and the field the refusal names.
BAD_ENTRIES: list[tuple[dict[str, object], str]] = [
    ({"battery_kwh": 0.0}, "vehicle.battery_kwh"),
    ({"charger_kw": float("inf")}, "vehicle.charger_kw"),
    ({"charge_efficiency_frac": 1.2}, "vehicle.charge_efficiency_frac"),
    ({"shards_per_slot": 20_000}, "vehicle.shards_per_slot"),
    ({"vin": "not-a-vin"}, "vehicle.vin"),
    ({"evse": "no-evse-number"}, "vehicle.evse"),
    ({"home_site_id": "mars"}, "vehicle.home_site_id"),
    ({"id_tokens": ["ok", "white space"]}, "vehicle.id_tokens[1]"),
    ({"vehicle_id": "../etc"}, "vehicle.vehicle_id"),
]


def test_bad_fields_name_themselves_and_unknown_cars_are_not_found(live: LiveFleet) -> None:  # noqa: F811
    operator, admin = live.metadata(Role.OPERATOR), live.metadata(Role.ADMIN)
    for changes, field in BAD_PREFERENCES:
        fields: dict[str, object] = {"vehicle_id": OWNED_CAR, "participating": True, **changes}
        request = pb.SetOwnerPreferencesRequest(**fields)  # type: ignore[arg-type]
        error = rpc_error(
            lambda r=request: live.stub.SetOwnerPreferences(r, metadata=operator)  # type: ignore[misc]
        )
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (field, error.details())
        assert error.details().startswith(f"{field}: "), error.details()
    for changes, field in BAD_ENTRIES:
        fields = {
            "vehicle_id": "car-new",
            "battery_kwh": 60.0,
            "charger_kw": 7.4,
            "compute_kw": 0.2,
            **changes,
        }
        entry = pb.RegisterVehicleRequest(vehicle=pb.VehicleRecord(**fields))  # type: ignore[arg-type]
        error = rpc_error(
            lambda r=entry: live.stub.RegisterVehicle(r, metadata=admin)  # type: ignore[misc]
        )
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (field, error.details())
        assert error.details().startswith(f"{field}: "), error.details()
    missing = rpc_error(
        lambda: live.stub.RegisterVehicle(pb.RegisterVehicleRequest(), metadata=admin)
    )
    assert missing.details() == "vehicle: is required"
    for call in (  # a car the fleet does not know
        lambda: live.stub.GetOwnerPreferences(
            pb.GetOwnerPreferencesRequest(vehicle_id="car-z"), metadata=operator
        ),
        lambda: live.stub.SetOwnerPreferences(
            pb.SetOwnerPreferencesRequest(vehicle_id="car-z"), metadata=operator
        ),
    ):
        error = rpc_error(call)
        assert error.code() is grpc.StatusCode.NOT_FOUND
        assert error.details() == "unknown vehicle 'car-z'"
    # nothing refused reached the service
    assert live.service.state.sources == {}


def test_an_admin_registers_cars_and_a_viewer_lists_them(live: LiveFleet) -> None:  # noqa: F811
    assert live.tick(T0) is not None
    admin, viewer = live.metadata(Role.ADMIN), live.metadata(Role.VIEWER)
    new_car = pb.VehicleRecord(
        vehicle_id="car-new",
        battery_kwh=60.0,
        charger_kw=7.4,
        compute_kw=0.2,
        home_site_id="berlin-depot",
        vin="WVWZZZ1JZXW000001",
        id_tokens=["rfid-0042"],
        evse="depot-cs-7/1",
    )
    refused = rpc_error(
        lambda: live.stub.RegisterVehicle(
            pb.RegisterVehicleRequest(vehicle=new_car), metadata=live.metadata(Role.OPERATOR)
        )
    )
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
    live.clock.now = T0 + timedelta(minutes=2)
    stored = live.stub.RegisterVehicle(
        pb.RegisterVehicleRequest(vehicle=new_car), metadata=admin, timeout=20
    )
    assert stored.charge_efficiency_frac == pytest.approx(0.92)
    assert stored.shards_per_slot == 1 and stored.accelerator == "cpu"
    assert stored.updated_at.ToSeconds() == int((T0 + timedelta(minutes=2)).timestamp())

    # a planned car's new entry (a faster charger) re-plans
    faster = pb.VehicleRecord(vehicle_id="car-b", battery_kwh=75.0, charger_kw=22.0, compute_kw=0.3)
    live.stub.RegisterVehicle(pb.RegisterVehicleRequest(vehicle=faster), metadata=admin, timeout=20)
    replanned = live.tick(T0 + SLOT)
    assert replanned is not None and "registry-changed" in replanned.reasons
    car_b = next(v for v in live.service.current_plan.scenario.vehicles if v.id == "car-b")  # type: ignore[union-attr]
    assert car_b.charger_kw == 22.0

    first = live.stub.ListVehicles(pb.ListVehiclesRequest(page_size=2), metadata=viewer, timeout=10)
    assert [v.vehicle_id for v in first.vehicles] == ["car-a", "car-b"]
    assert first.total_size == 5 and first.next_page_token
    rest = live.stub.ListVehicles(
        pb.ListVehiclesRequest(page_token=first.next_page_token), metadata=viewer, timeout=10
    )
    entries = {v.vehicle_id: v for v in [*first.vehicles, *rest.vehicles]}
    assert list(entries) == ["car-a", "car-b", "car-c", "car-d", "car-new"]
    assert not rest.next_page_token
    assert not entries["car-a"].HasField("data")  # version-1 telemetry: all in one message
    assert entries["car-b"].record.charger_kw == 22.0
    assert entries["car-b"].data.energy_source == pb.ENERGY_SOURCE_READING
    assert list(entries["car-b"].data.lacks) == []
    new = entries["car-new"]
    assert new.record.home_site_id == "berlin-depot" and new.record.evse == "depot-cs-7/1"
    assert new.data.energy_source == pb.ENERGY_SOURCE_UNKNOWN
    assert not new.data.HasField("energy_age_s") and not new.data.HasField("measured_age_s")
    assert new.data.registry_age_s == pytest.approx((SLOT - timedelta(minutes=2)).total_seconds())
    assert list(new.data.lacks) == [
        "location",
        "energy reading since it arrived",
        "owner preferences (no consent to compute, no departure)",
    ]


def test_the_plan_says_which_car_lacks_what(live: LiveFleet) -> None:  # noqa: F811
    # car-e reports what its charger measures; the registry has no entry for it
    live.publish(
        MeasuredState(
            vehicle_id="car-e",
            event_time=T0 - timedelta(minutes=3),
            source="ocpp:depot-cs-9/1",
            site_id="berlin-depot",
            plugged_in=True,
            soc_frac=0.4,
        )
    )
    assert live.service.catch_up(20)
    live.clock.now = T0 + timedelta(minutes=1)
    operator = live.metadata(Role.OPERATOR)
    live.stub.SetOwnerPreferences(  # car-c now has its sources apart too
        pb.SetOwnerPreferencesRequest(vehicle_id="car-c", reserve_kwh=5.0, participating=True),
        metadata=operator,
        timeout=20,
    )
    assert live.tick(T0 + SLOT) is not None
    summary = live.get_plan().plan
    notes = {note.vehicle_id: note for note in summary.data_notes}
    assert list(notes) == ["car-c", "car-e"]
    car_e = notes["car-e"]
    assert list(car_e.lacks) == [
        "fleet registry entry (battery, charger, compute)",  # a SoC, no battery to size it
        "owner preferences (no consent to compute, no departure)",
    ]
    assert car_e.energy_source == pb.ENERGY_SOURCE_UNKNOWN
    assert car_e.energy_age_s == 18 * 60 and car_e.measured_age_s == 18 * 60
    assert not car_e.HasField("registry_age_s") and car_e.controllable
    car_c = notes["car-c"]
    assert list(car_c.lacks) == [] and car_c.energy_source == pb.ENERGY_SOURCE_READING
    assert car_c.preferences_age_s == 14 * 60
    assert summary.vehicles == 4  # car-e is not planned
    status = live.stub.GetFleetStatus(
        pb.GetFleetStatusRequest(), metadata=live.metadata(Role.VIEWER), timeout=10
    )
    assert [n.vehicle_id for n in status.plan.data_notes] == ["car-c", "car-e"]

    # the entry car-e lacked brings it into the next plan
    live.clock.now = T0 + 2 * SLOT
    entry = pb.VehicleRecord(vehicle_id="car-e", battery_kwh=50.0, charger_kw=7.4, compute_kw=0.2)
    live.stub.RegisterVehicle(
        pb.RegisterVehicleRequest(vehicle=entry), metadata=live.metadata(Role.ADMIN), timeout=20
    )
    replanned = live.tick(T0 + 2 * SLOT)
    assert replanned is not None and {"arrived", "plugged-in"} <= set(replanned.reasons)
    summary = live.get_plan().plan
    assert summary.vehicles == 5
    car_e = next(note for note in summary.data_notes if note.vehicle_id == "car-e")
    assert list(car_e.lacks) == ["owner preferences (no consent to compute, no departure)"]
    assert car_e.energy_source == pb.ENERGY_SOURCE_READING  # 40 % of 50 kWh
