"""Which car is on an EVSE, what a report says of it, and how a site's cap is shared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from idlefleet.ocpp.caps import SiteCap, site_caps_now, split_cap
from idlefleet.ocpp.measurements import (
    MeasurementError,
    dead_letter_value,
    measured_state,
    session_id_of,
)
from idlefleet.ocpp.meters import MeterSample
from idlefleet.ocpp.reports import EvseReport, ReportKind, plugged_in_of
from idlefleet.ocpp.vehicles import UnmappedError, VehicleMap
from idlefleet.sites import SiteConfig
from streams.messages import DemandResponseEvent, VehicleRecord

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def record(vehicle_id: str, minutes: int = 0, **fields: Any) -> VehicleRecord:
    return VehicleRecord(
        vehicle_id=vehicle_id,
        updated_at=T0 + timedelta(minutes=minutes),
        battery_kwh=60.0,
        charger_kw=11.0,
        compute_kw=0.3,
        **fields,
    )


def unmapped(cars: VehicleMap, station_id: str, evse_id: int, token: str | None) -> str:
    with pytest.raises(UnmappedError) as refused:
        cars.vehicle_for(station_id, evse_id, token)
    return refused.value.reason


def test_a_known_token_names_the_car_else_the_evse_does() -> None:
    cars = VehicleMap()
    cars.apply(record("home", evse="CS-1/1"))
    cars.apply(record("visitor", id_tokens=["04A2B3C4", "EVCCID-0A1B2C"]))
    assert cars.vehicle_for("CS-1", 1, "evccid-0a1b2c") == "visitor"  # case ignored
    assert cars.vehicle_for("CS-1", 1, "unknown-rfid") == "home"
    assert cars.vehicle_for("CS-1", 1, None) == "home"
    assert cars.vehicle_for("CS-9", 2, "04a2b3c4") == "visitor"
    assert unmapped(cars, "CS-1", 2, None) == (
        "no car in the fleet registry has EVSE CS-1/2 (evse) (and no idToken)"
    )


def test_the_newest_entry_counts_and_a_retired_car_maps_to_nothing() -> None:
    cars = VehicleMap()
    assert cars.apply(record("a", minutes=5, evse="CS-1/1"))
    assert not cars.apply(record("a", minutes=1, evse="CS-2/1"))  # older: ignored
    assert cars.vehicle_for("CS-1", 1, None) == "a"
    assert cars.apply(record("a", minutes=9, evse="CS-2/1"))  # moved to another EVSE
    assert cars.vehicle_for("CS-2", 1, None) == "a"
    assert "EVSE CS-1/1" in unmapped(cars, "CS-1", 1, None)
    assert cars.apply(record("a", minutes=10, evse="CS-2/1", retired=True))
    assert "EVSE CS-2/1" in unmapped(cars, "CS-2", 1, None)


def test_ambiguous_entries_are_refused_with_the_cars_named() -> None:
    cars = VehicleMap()
    cars.apply(record("b", evse="CS-1/1", id_tokens=["TAG"]))
    cars.apply(record("a", evse="CS-1/1", id_tokens=["tag"]))
    assert unmapped(cars, "CS-1", 1, "TAG") == (
        "idToken 'TAG' is in the fleet registry entries of a, b"
    )
    assert unmapped(cars, "CS-1", 1, None) == (
        "EVSE CS-1/1 is the registered EVSE of a, b, and no idToken of the session tells them apart"
    )


def report(kind: ReportKind = ReportKind.METER, **fields: Any) -> EvseReport:
    values: dict[str, Any] = {
        "station_id": "CS-1",
        "evse_id": 2,
        "kind": kind,
        "time": T0,
        "controllable": True,
        **fields,
    }
    return EvseReport(**values)


def test_a_meter_sample_says_soc_power_and_the_sessions_energy() -> None:
    sample = MeterSample(
        T0 + timedelta(seconds=5), energy_wh=14_250.0, power_w=7_400.0, soc_pct=63.5
    )
    state = measured_state(
        report(sample=sample, transaction_id="tx 1", session_start_wh=12_000.0), "car-a", "depot"
    )
    assert state is not None
    assert (state.vehicle_id, state.event_time, state.source) == (
        "car-a",
        sample.time,
        "ocpp:CS-1/2",
    )
    assert (state.site_id, state.plugged_in, state.controllable) == ("depot", True, True)
    assert (state.soc_frac, state.power_kw, state.session_energy_kwh) == (0.635, 7.4, 2.25)
    assert state.session_id == session_id_of("tx 1") and state.session_id.startswith("tx-")
    assert state.energy_kwh is None and state.away is None  # a charger does not know them


def test_what_a_report_does_not_say_stays_unsaid() -> None:
    no_start = MeterSample(T0, energy_wh=5_000.0, power_w=0.0)
    state = measured_state(report(sample=no_start, transaction_id="7"), "car-a", "depot")
    assert state is not None
    assert (state.session_id, state.session_energy_kwh, state.plugged_in) == (None, None, None)
    unplugged = measured_state(
        report(ReportKind.STATUS, plugged_in=plugged_in_of("Available")), "car-a", "depot"
    )
    assert unplugged is not None and unplugged.plugged_in is False
    assert unplugged.event_time == T0
    faulted = report(ReportKind.STATUS, plugged_in=plugged_in_of("Faulted"), detail="Faulted")
    assert measured_state(faulted, "car-a", "depot") is None
    lost = measured_state(report(ReportKind.CONTROL, controllable=False), "car-a", "depot")
    assert lost is not None and lost.controllable is False


@pytest.mark.parametrize(
    ("sample", "start_wh", "says"),
    [
        (MeterSample(T0, soc_pct=130.0), None, "SoC 130 % lies outside 0-100 %"),
        (MeterSample(T0, power_w=-2_000.0), None, "Power.Active.Import -2000 W is negative"),
        (MeterSample(T0, power_w=float("nan")), None, "Power.Active.Import nan W is not"),
        (MeterSample(T0, energy_wh=900.0), 1_000.0, "the energy register went back from 1000"),
    ],
)
def test_values_no_car_has_are_refused_with_the_reason(
    sample: MeterSample, start_wh: float | None, says: str
) -> None:
    bad = report(sample=sample, transaction_id="7", session_start_wh=start_wh)
    with pytest.raises(MeasurementError) as refused:
        measured_state(bad, "car-a", "depot")
    assert refused.value.reason.startswith(says)
    assert b'"station_id": "CS-1"' in dead_letter_value(bad)  # NaN too: valid JSON


def test_an_unreadable_report_is_refused_with_its_reason() -> None:
    unreadable = report(ReportKind.UNREADABLE, detail="unreadable meter values: bad timestamp")
    with pytest.raises(MeasurementError, match="unreadable meter values: bad timestamp"):
        measured_state(unreadable, "car-a", "depot")


def site(site_id: str, region: str, grid_limit_kw: float) -> SiteConfig:
    return SiteConfig(
        site_id=site_id,
        region=region,
        timezone="UTC",
        latitude_deg=0.0,
        longitude_deg=0.0,
        grid_limit_kw=grid_limit_kw,
    )


def cap(
    event_id: str, kw: float, start_h: float, end_h: float, **target: Any
) -> DemandResponseEvent:
    return DemandResponseEvent(
        event_id=event_id,
        start=T0 + timedelta(hours=start_h),
        end=T0 + timedelta(hours=end_h),
        max_import_kw=kw,
        **target,
    )


def test_a_site_is_held_to_the_lowest_cap_in_force_on_it() -> None:
    sites = [site("a", "DE", 30.0), site("b", "DE", 90.0), site("c", "GB", 50.0)]
    events = [
        cap("site-a", 20.0, -1, 2, site_id="a"),
        cap("region", 40.0, 0, 1, region="DE"),  # a: 10 kW of it, b: 30 kW
        cap("later", 1.0, 1, 3, site_id="c"),  # not yet in force
        cap("gone", 1.0, -3, -1, site_id="b"),  # over
        cap("withdrawn", 1.0, -1, 2, site_id="b", cancelled=True),
    ]
    caps = site_caps_now(events, sites, T0 + timedelta(minutes=30))
    assert caps == {
        "a": SiteCap(10.0, T0, T0 + timedelta(hours=1)),
        "b": SiteCap(30.0, T0, T0 + timedelta(hours=1)),
    }


def test_a_cap_is_split_by_station_size_and_never_exceeded() -> None:
    shares = split_cap(15.0, {"big": 44.0, "small": 22.0, "tiny": 3.7})
    assert sum(shares.values()) <= 15.0 + 1e-9
    assert shares["big"] == pytest.approx(2 * shares["small"])
    assert split_cap(15.0, {}) == {}
