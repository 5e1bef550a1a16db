"""The central system inside the service: real 2.0.1 and 1.6J stations over WebSockets, the real
planner service and broker. What stations measure reaches the measured-state topic signed by the
adapter; plans and DR caps reach the stations as profiles."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.v201 import call as call201

from idlefleet.ocpp.meters import parse_time
from idlefleet.ocpp.vehicles import UnmappedError
from optimizer.plan import PlanSnapshot
from streams.clients import KafkaSettings
from streams.messages import DemandResponseEvent, MeasuredState
from tests.idlefleet.ocpp.depot import (
    GRID_LIMIT_KW,
    SITE,
    Depot,
    car,
    running_depot,
    station,
    until,
    wishes,
)
from tests.idlefleet.ocpp.harness import (
    AC11,
    AC22_W,
    Station,
    Station201,
    connected,
    now_iso,
)
from tests.streams.test_reader import read_dead_letters

TOKEN = "EVCCID-0A1B2C"  # what the harness's stations send as the session's id token
STATION_MAX = {"ocpp2.0.1": "ChargingStationMaxProfile", "ocpp1.6": "ChargePointMaxProfile"}


def limit_kw(period: dict[str, Any], unit: str) -> float:
    """A received period's limit as power [kW] (3 phases at 230 V when in A)."""
    return float(period["limit"]) * (3 * 230.0 if unit == "A" else 1.0) / 1000.0


def per_slot(periods: list[dict[str, Any]], slots: int) -> list[float]:
    """The limit in force in each 15-minute slot of a schedule [in its unit]."""
    return [
        float([p for p in periods if p["start_period"] <= i * 900][-1]["limit"])
        for i in range(slots)
    ]


def first_slot(profile: dict[str, Any], snapshot: PlanSnapshot) -> int:
    """The plan's slot a received absolute profile starts at (slots over are left out)."""
    schedule = profile["charging_schedule"]
    start = (schedule[0] if isinstance(schedule, list) else schedule)["start_schedule"]
    horizon = snapshot.scenario.horizon
    return round((parse_time(start) - horizon.start) / horizon.slot_delta)


def slot_of(snapshot: PlanSnapshot, moment: datetime) -> int:
    """The plan's slot holding `moment`."""
    horizon = snapshot.scenario.horizon
    return int((moment - horizon.start) / horizon.slot_delta)


def newest(depot: Depot, vehicle_id: str, **fields: Any) -> MeasuredState | None:
    """The newest measured state of the car on the topic with all of `fields`."""
    matching = [
        s
        for s in depot.seen.of(vehicle_id)
        if all(getattr(s, name) == value for name, value in fields.items())
    ]
    return matching[-1] if matching else None


@pytest.mark.parametrize("protocol", ["ocpp2.0.1", "ocpp1.6"])
def test_a_session_is_measured_for_its_car_and_gets_the_plan_as_a_profile(
    kafka_settings: KafkaSettings, protocol: str
) -> None:
    # 2.0.1: the car is known by the EVCCID its session sends (in other case); 1.6: by its EVSE
    record = (
        car("car-a", id_tokens=[TOKEN.lower()])
        if protocol == "ocpp2.0.1"
        else car("car-a", evse="CS-1/1")
    )

    async def scenario(depot: Depot) -> None:
        departure = depot.slot_start + timedelta(hours=2)
        depot.publish([record, wishes("car-a", 40.0, departure)], "planner")
        async with connected(depot.port, "CS-1", protocol) as cs:
            await cs.boot()
            await until(lambda: "TxDefaultProfile" in cs.purposes())
            await cs.start_session("tx-1", soc_pct=42.0, power_w=11000.0)
            state = await until(lambda: newest(depot, "car-a", soc_frac=0.42))
            assert state.source == "ocpp:CS-1/1" and state.site_id == SITE
            assert state.plugged_in and state.controllable and state.power_kw == 11.0
            # 2.0.1: the register at the start is the session's first reading (12.5 kWh);
            # 1.6: meterStart 0 Wh, then 12500 Wh
            metered_kwh = 0.0 if protocol == "ocpp2.0.1" else 12.5
            assert state.session_energy_kwh == pytest.approx(metered_kwh)
            assert state.session_id is not None
            await depot.tick()
            snapshot = depot.service.current_plan
            assert snapshot is not None and "car-a" in snapshot.plan.vehicles
            planned_kw = snapshot.plan.vehicles["car-a"].charge_kw
            assert sum(planned_kw) > 0  # it owes 14.8 kWh
            await until(lambda: "TxProfile" in cs.purposes())
            evse, profile, periods = cs.last("TxProfile")
            assert evse == 1 and str(profile["transaction_id"]) == state.session_id
            remaining_kw = planned_kw[first_slot(profile, snapshot) :]
            got_kw = [g * 3 * 230.0 / 1000.0 for g in per_slot(periods, len(remaining_kw))]
            assert remaining_kw and snapshot.scenario.horizon.slots - len(remaining_kw) <= 1
            for got, planned in zip(got_kw, remaining_kw, strict=True):
                # the planned power as the EVSE draws it: in whole 0.1 A steps (69 W), never
                # above the plan nor the EVSE; under the car's least current (6 A) a pause
                assert got <= min(planned, AC11.max_power_kw) + 1e-9
                assert got == 0.0 if planned < AC11.min_power_kw else got > planned - 0.07

    with running_depot(kafka_settings, {"CS-1": station()}) as depot:
        asyncio.run(scenario(depot))


def test_a_dr_cap_becomes_station_limits_that_add_up_to_at_most_the_cap(
    kafka_settings: KafkaSettings,
) -> None:
    """Two stations of 22 and 11 kW (2.0.1 in watts, 1.6J in amperes) share a 15 kW cap as
    10 and 5 kW; withdrawn, the cap is lifted to each station's maximum."""
    now = datetime.now(UTC)
    cap = DemandResponseEvent(
        event_id="utility-cap",
        site_id=SITE,
        start=now - timedelta(minutes=1),
        end=now + timedelta(hours=1),
        max_import_kw=15.0,
    )
    stations = {
        "CS-22": station(AC22_W, station_kw=44.0),
        "CS-11": station(AC11, station_kw=22.0),
    }
    units = {"CS-22": "W", "CS-11": "A"}

    async def scenario(depot: Depot) -> None:
        async with (
            connected(depot.port, "CS-22", "ocpp2.0.1") as big,
            connected(depot.port, "CS-11", "ocpp1.6") as small,
        ):
            await big.boot()
            await small.boot()
            depot.publish([cap], "feeds")  # the utility's adapter, as the VEN publishes it
            by_station: dict[str, Station] = {"CS-22": big, "CS-11": small}

            def limits_kw() -> dict[str, float] | None:
                got = {}
                for name, cs in by_station.items():
                    purpose = STATION_MAX[cs_protocol(cs)]
                    if purpose not in cs.purposes():
                        return None
                    evse, profile, periods = cs.last(purpose)
                    assert evse == 0 and profile["charging_profile_kind"] == "Absolute"
                    got[name] = limit_kw(periods[0], units[name])
                return got

            capped = await until(limits_kw)
            assert sum(capped.values()) <= 15.0
            assert capped["CS-22"] == pytest.approx(10.0, abs=0.07)  # 44 of 66 kW
            assert capped["CS-11"] == pytest.approx(5.0, abs=0.07)  # 22 of 66 kW
            depot.publish([cap.model_copy(update={"cancelled": True})], "feeds")
            lifted = await until(lambda: (got := limits_kw()) != capped and got)
            assert lifted == {"CS-22": 44.0, "CS-11": pytest.approx(22.0, abs=0.07)}

    with running_depot(kafka_settings, stations) as depot:
        asyncio.run(scenario(depot))


def mapped(depot: Depot, station_id: str, evse_id: int, token: str | None) -> str | None:
    """The car the adapter finds on an EVSE now; None when it finds none."""
    try:
        return depot.ocpp.adapter.vehicles.vehicle_for(station_id, evse_id, token)
    except UnmappedError:
        return None


def cs_protocol(cs: Station) -> str:
    return "ocpp2.0.1" if isinstance(cs, Station201) else "ocpp1.6"


def test_a_station_that_ignores_its_profile_makes_its_car_uncontrolled(
    kafka_settings: KafkaSettings,
) -> None:
    """The plan pauses the car in the dirty first slot; the station keeps drawing 11 kW. After
    three samples the car's measured state says uncontrollable, and the next plan leaves it
    out and lowers the site's limit by its charger; the session gets full power back."""

    async def scenario(depot: Depot) -> None:
        depot.publish([car("car-a", evse="CS-1/1")], "planner")
        async with connected(depot.port, "CS-1", "ocpp2.0.1") as cs:
            await cs.boot()
            await cs.start_session("tx-9", soc_pct=50.0, power_w=11000.0)
            await until(lambda: newest(depot, "car-a", soc_frac=0.5))
            await depot.tick()
            first = depot.service.current_plan
            assert first is not None  # a pause now: the slot is dirty and nothing is owed
            assert first.plan.vehicles["car-a"].charge_kw[slot_of(first, datetime.now(UTC))] == 0
            await until(lambda: "TxProfile" in cs.purposes())
            for _ in range(3):
                await cs.meter(soc_pct=50.0, power_w=11000.0)
            lost = await until(lambda: newest(depot, "car-a", controllable=False))
            assert lost.source == "ocpp:CS-1/1" and lost.power_kw == 11.0
            await depot.tick()
            second = depot.service.current_plan
            assert second is not None and second is not first
            assert "car-a" not in second.plan.vehicles
            [site] = second.scenario.sites
            assert site.grid_limit_kw == GRID_LIMIT_KW - 11.0  # the car's charger, at full power
            await until(lambda: len([p for p in cs.purposes() if p == "TxProfile"]) == 2)
            _, _, periods = cs.last("TxProfile")
            assert [limit_kw(p, "A") for p in periods] == [pytest.approx(11.0, abs=0.07)]

    with running_depot(kafka_settings, {"CS-1": station()}) as depot:
        asyncio.run(scenario(depot))


def test_measurements_of_an_evse_no_car_is_registered_at_go_to_the_dead_letters(
    kafka_settings: KafkaSettings,
) -> None:
    """Never dropped: each record is parked with the reason; once an operator registers the
    car's token, its measurements flow."""

    async def scenario(depot: Depot) -> None:
        async with connected(depot.port, "CS-1", "ocpp2.0.1") as cs:
            await cs.boot()
            await cs.start_session("tx-7", soc_pct=30.0, power_w=7000.0)
            letters = await asyncio.to_thread(read_dead_letters, depot.kafka, 2)
            reasons = [str(letter["reason"], "utf-8") for letter in letters]
            assert reasons[0] == (
                "ocpp CS-1/1 session-started: no car in the fleet registry has EVSE CS-1/1 "
                f"(evse) nor idToken {TOKEN!r} (id_tokens)"
            )
            assert reasons[1].startswith("ocpp CS-1/1 meter: no car in the fleet registry")
            assert letters[0]["source_topic"] == b"ocpp:CS-1/1"
            parked = json.loads(letters[1]["value"] or b"")
            assert parked["id_token"] == TOKEN and parked["sample"]["soc_pct"] == 30.0
            assert depot.seen.of("car-z") == []
            depot.publish([car("car-z", id_tokens=[TOKEN])], "planner")
            await until(lambda: mapped(depot, "CS-1", 1, TOKEN))
            await cs.meter(soc_pct=31.0, power_w=7000.0)
            await until(lambda: newest(depot, "car-z", soc_frac=0.31))
            assert depot.ocpp.adapter.dead_lettered == 2

    with running_depot(kafka_settings, {"CS-1": station()}) as depot:
        asyncio.run(scenario(depot))


def test_a_visiting_car_is_the_one_unplugged_and_the_evse_owner_the_one_plugged_next(
    kafka_settings: KafkaSettings,
) -> None:
    """The EVSE is car-home's, but a session's token names car-visitor: every record of the
    session, and the unplugging after it, is car-visitor's; a car plugged in later without a
    session yet is taken to be car-home."""

    async def status(cs: Station201, connector_status: str) -> None:
        await cs.call(
            call201.StatusNotification(
                timestamp=now_iso(), connector_status=connector_status, evse_id=1, connector_id=1
            )
        )

    async def scenario(depot: Depot) -> None:
        depot.publish(
            [car("car-home", evse="CS-1/1"), car("car-visitor", id_tokens=[TOKEN])], "planner"
        )
        async with connected(depot.port, "CS-1", "ocpp2.0.1") as cs:
            assert isinstance(cs, Station201)
            await cs.boot()
            await cs.start_session("tx-3", soc_pct=60.0, power_w=11000.0)
            await until(lambda: newest(depot, "car-visitor", soc_frac=0.6))
            await cs.call(
                call201.TransactionEvent(
                    event_type="Ended",
                    timestamp=now_iso(),
                    trigger_reason="EVCommunicationLost",
                    seq_no=1,
                    transaction_info={"transaction_id": "tx-3"},
                )
            )
            await status(cs, "Available")
            await until(lambda: newest(depot, "car-visitor", plugged_in=False))
            await status(cs, "Occupied")
            home = await until(lambda: newest(depot, "car-home", plugged_in=True))
            assert home.site_id == SITE and home.session_id is None
            assert newest(depot, "car-home", plugged_in=False) is None

    with running_depot(kafka_settings, {"CS-1": station()}) as depot:
        asyncio.run(scenario(depot))
