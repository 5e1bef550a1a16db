"""The central system against real OCPP 2.0.1 and 1.6J stations over real WebSockets."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import websockets

from idlefleet.ocpp.central import tls_context
from idlefleet.ocpp.station import EvseRef
from tests.idlefleet.ocpp.harness import (
    AC11,
    PASSWORD,
    config,
    connected,
    plan,
    running_central,
    self_signed,
    slot_start,
    until,
)

VERSIONS = ["ocpp2.0.1", "ocpp1.6"]
TX = {"ocpp2.0.1": "TxProfile", "ocpp1.6": "TxProfile"}
STATION_MAX = {"ocpp2.0.1": "ChargingStationMaxProfile", "ocpp1.6": "ChargePointMaxProfile"}


def limit_kw(period: dict[str, float], unit: str) -> float:
    """A received period's limit as power [kW] (AC11: 3 phases at 230 V)."""
    return float(period["limit"]) * (3 * 230.0 if unit == "A" else 1.0) / 1000.0


@pytest.mark.parametrize("protocol", VERSIONS)
def test_boot_gets_the_full_power_default(protocol: str) -> None:
    async def scenario() -> None:
        async with (
            running_central(config(["CS-1"])) as (central, port, _),
            connected(port, "CS-1", protocol) as station,
        ):
            await station.boot()
            await until(lambda: "TxDefaultProfile" in station.purposes())
            evse, profile, periods = station.last("TxDefaultProfile")
            assert evse == 0 and profile["charging_profile_kind"] == "Relative"
            assert limit_kw(periods[0], "A") == pytest.approx(AC11.max_power_kw, abs=0.1)
            assert central.registry.state("CS-1").protocol == protocol

    asyncio.run(scenario())


@pytest.mark.parametrize("protocol", VERSIONS)
def test_a_session_with_a_soc_gets_a_profile_that_carries_out_the_plan(protocol: str) -> None:
    async def scenario() -> None:
        async with (
            running_central(config(["CS-1"])) as (central, port, measurements),
            connected(port, "CS-1", protocol) as station,
        ):
            await station.boot()
            await station.start_session("tx-1", soc_pct=42.0, power_w=11000.0)
            await until(lambda: any(s.soc_pct == 42.0 for _, _, s in measurements.seen))
            evse_state = central.registry.state("CS-1").evse(1)
            assert evse_state.transaction_id is not None
            assert evse_state.id_token == "EVCCID-0A1B2C"
            answers = await central.apply_plan({EvseRef("CS-1", 1): plan(7.0, 30.0, 0.0, 11.0)})
            assert answers == {EvseRef("CS-1", 1): True}
            evse, profile, periods = station.last(TX[protocol])
            assert evse == 1
            assert str(profile["transaction_id"]) == evse_state.transaction_id
            assert profile["charging_profile_kind"] == "Absolute"
            assert [p["start_period"] for p in periods] == [0, 900, 1800, 2700]
            powers_kw = [limit_kw(p, "A") for p in periods]
            for got, planned in zip(powers_kw, [7.0, 11.0, 0.0, 11.0], strict=True):
                assert planned - 0.3 <= got <= planned  # within the EVSE, never above the plan

    asyncio.run(scenario())


@pytest.mark.parametrize("protocol", VERSIONS)
def test_a_plan_made_before_the_session_is_sent_when_it_starts(protocol: str) -> None:
    async def scenario() -> None:
        async with (
            running_central(config(["CS-1"])) as (central, port, _),
            connected(port, "CS-1", protocol) as station,
        ):
            await station.boot()
            assert await central.apply_plan({EvseRef("CS-1", 1): plan(5.0, 5.0)}) == {
                EvseRef("CS-1", 1): None
            }
            await station.start_session("tx-2", soc_pct=10.0, power_w=0.0)
            await until(lambda: TX[protocol] in station.purposes())

    asyncio.run(scenario())


@pytest.mark.parametrize("protocol", VERSIONS)
def test_a_dr_cap_becomes_a_station_limit_under_it(protocol: str) -> None:
    async def scenario() -> None:
        async with (
            running_central(config(["CS-1"])) as (central, port, _),
            connected(port, "CS-1", protocol) as station,
        ):
            await station.boot()
            start = slot_start()
            answers = await central.apply_cap({"CS-1": 6.5}, start, start + timedelta(hours=1))
            assert answers == {"CS-1": True}
            evse, profile, periods = station.last(STATION_MAX[protocol])
            assert evse == 0 and profile["charging_profile_kind"] == "Absolute"
            assert 6.0 <= limit_kw(periods[0], "A") <= 6.5

    asyncio.run(scenario())


@pytest.mark.parametrize("protocol", VERSIONS)
def test_a_station_that_ignores_its_profile_is_marked_uncontrollable(protocol: str) -> None:
    async def scenario() -> None:
        async with (
            running_central(config(["CS-1"])) as (central, port, _),
            connected(port, "CS-1", protocol) as station,
        ):
            await station.boot()
            await station.start_session("tx-3", soc_pct=30.0, power_w=11000.0)
            await until(lambda: central.registry.state("CS-1").evse(1).transaction_id is not None)
            assert await central.apply_plan({EvseRef("CS-1", 1): plan(4.5, 4.5)})
            for _ in range(2):
                await station.meter(soc_pct=31.0, power_w=11000.0)
            assert central.controllable("CS-1", 1)  # two samples over: a station still ramping
            await station.meter(soc_pct=31.0, power_w=11000.0)
            assert not central.controllable("CS-1", 1)
            assert "11.00 kW" in (central.registry.state("CS-1").evse(1).compliance.reason or "")

    asyncio.run(scenario())


@pytest.mark.parametrize("protocol", VERSIONS)
def test_a_station_that_rejects_its_profile_is_marked_uncontrollable(protocol: str) -> None:
    async def scenario() -> None:
        async with (
            running_central(config(["CS-1"])) as (central, port, _),
            connected(port, "CS-1", protocol) as station,
        ):
            await station.boot()
            await station.start_session("tx-4", soc_pct=30.0, power_w=11000.0)
            await until(lambda: central.registry.state("CS-1").evse(1).transaction_id is not None)
            station.reject = True
            assert await central.apply_plan({EvseRef("CS-1", 1): plan(4.5)}) == {
                EvseRef("CS-1", 1): False
            }
            assert not central.controllable("CS-1", 1)

    asyncio.run(scenario())


@pytest.mark.parametrize("protocol", VERSIONS)
def test_a_dropped_connection_resumes_the_session(protocol: str) -> None:
    async def scenario() -> None:
        async with running_central(config(["CS-1"])) as (central, port, measurements):
            state = central.registry.state("CS-1")
            async with connected(port, "CS-1", protocol) as station:
                await station.boot()
                await station.start_session("tx-5", soc_pct=50.0, power_w=11000.0)
                await until(lambda: state.evse(1).transaction_id is not None)
            transaction_id = state.evse(1).transaction_id
            await until(lambda: not state.connected)
            # A plan made while the station is away waits for it.
            assert await central.apply_plan({EvseRef("CS-1", 1): plan(3.0, 8.0)}) == {
                EvseRef("CS-1", 1): None
            }
            async with connected(port, "CS-1", protocol, station=station):
                await until(lambda: TX[protocol] in station.purposes())
                _, profile, _ = station.last(TX[protocol])
                assert str(profile["transaction_id"]) == transaction_id
                await station.meter(soc_pct=51.0, power_w=3000.0)
                await until(lambda: measurements.seen[-1][2].soc_pct == 51.0)
            assert state.connections == 2 and state.evse(1).transaction_id == transaction_id
            assert state.evse(1).tx_acknowledged and central.controllable("CS-1", 1)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("station_id", "password"),
    [("CS-1", "wrong"), ("CS-unknown", PASSWORD)],
    ids=["wrong-password", "unknown-station"],
)
def test_wrong_credentials_are_refused_before_the_websocket_opens(
    station_id: str, password: str
) -> None:
    async def scenario() -> None:
        async with running_central(config(["CS-1"])) as (central, port, _):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connected(port, station_id, "ocpp2.0.1", password=password):
                    pass
            assert refused.value.response.status_code == 401
            assert central.registry.known() == []

    asyncio.run(scenario())


def test_a_station_connects_over_tls(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    cfg = replace(config(["CS-1"]), ssl=tls_context(cert_file, key_file))
    client = ssl.create_default_context(cafile=str(cert_file))

    async def scenario() -> None:
        async with (
            running_central(cfg) as (_, port, _),
            connected(port, "CS-1", "ocpp2.0.1", tls=client) as station,
        ):
            await station.boot()
            await until(lambda: "TxDefaultProfile" in station.purposes())

    asyncio.run(scenario())
