"""The VIN directory: each car's newest registry entry, whatever order entries arrive in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from idlefleet.bridges.measured import DeadLetter
from idlefleet.bridges.vins import VinDirectory, masked_vin
from streams.messages import VehicleRecord

T0 = datetime(2026, 7, 1, tzinfo=UTC)
VIN_A, VIN_B = "5YJ3E1EA7KF000001", "5YJ3E1EA7KF000002"


def entry(vehicle_id: str, vin: str | None, hours: float, retired: bool = False) -> VehicleRecord:
    return VehicleRecord(
        vehicle_id=vehicle_id,
        updated_at=T0 + timedelta(hours=hours),
        battery_kwh=75.0,
        charger_kw=11.0,
        compute_kw=0.3,
        vin=vin,
        retired=retired,
    )


def test_the_newest_entry_of_each_car_counts() -> None:
    directory = VinDirectory()
    assert directory.apply(entry("car-a", VIN_A, 1))
    assert not directory.apply(entry("car-a", VIN_B, 0))  # older: ignored
    assert not directory.apply(entry("car-a", VIN_B, 1))  # as old: ignored
    assert directory.vehicle_of(VIN_A) == "car-a"
    assert directory.apply(entry("car-a", VIN_B, 2))  # the car's VIN was corrected
    assert directory.vehicle_of(VIN_B) == "car-a"
    assert directory.vehicle_of(VIN_A) == DeadLetter("unknown VIN 5YJ…0001")
    assert directory.apply(entry("car-a", None, 3))  # the VIN was removed
    assert isinstance(directory.vehicle_of(VIN_B), DeadLetter)
    assert len(directory) == 0


def test_retired_cars_map_no_vin_and_a_vin_may_pass_to_another_car() -> None:
    directory = VinDirectory.of([entry("car-old", VIN_A, 0), entry("car-old", VIN_A, 1, True)])
    assert directory.vehicle_of(VIN_A) == DeadLetter("unknown VIN 5YJ…0001")
    directory.apply(entry("car-new", VIN_A, 2))
    assert directory.vehicle_of(VIN_A) == "car-new"
    assert len(directory) == 1


def test_a_vin_two_active_cars_claim_maps_to_neither_until_one_lets_go() -> None:
    directory = VinDirectory.of([entry("car-a", VIN_A, 0), entry("car-b", VIN_A, 0)])
    assert directory.vehicle_of(VIN_A) == DeadLetter(
        "VIN 5YJ…0001 is registered to 2 cars: car-a, car-b"
    )
    assert len(directory) == 0
    directory.apply(entry("car-a", VIN_B, 1))
    assert (directory.vehicle_of(VIN_A), directory.vehicle_of(VIN_B)) == ("car-b", "car-a")


def test_masked_vins_show_maker_and_serial_tail() -> None:
    assert masked_vin(VIN_A) == "5YJ…0001"
    assert masked_vin("SHORT") == "…"
    assert masked_vin("") == ""


ENTRIES = [
    entry(car, vin, hours, retired)
    for car in ("car-a", "car-b", "car-c")
    for vin in (VIN_A, VIN_B, None)
    for hours in (0, 1, 2)
    for retired in (False, True)
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(ENTRIES), max_size=12, unique_by=lambda r: (r.vehicle_id, r.updated_at)
    ),
    st.randoms(use_true_random=False),
)
def test_the_order_entries_arrive_in_changes_nothing(
    entries: list[VehicleRecord], rng: random.Random
) -> None:
    """Entries of one car may arrive in any order (a compacted topic, a late writer); each
    car's entries have distinct dates."""
    shuffled = list(entries)
    rng.shuffle(shuffled)
    ordered, mixed = VinDirectory.of(entries), VinDirectory.of(shuffled)
    for vin in (VIN_A, VIN_B):
        assert ordered.vehicle_of(vin) == mixed.vehicle_of(vin)
