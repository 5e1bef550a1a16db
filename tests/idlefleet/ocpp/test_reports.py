"""What the central system reports about each EVSE, heard from real 2.0.1 and 1.6J stations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
import websockets
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from idlefleet.ocpp.central import CentralConfig, CentralSystem
from idlefleet.ocpp.meters import parse_time
from idlefleet.ocpp.passwords import PasswordHash
from idlefleet.ocpp.reports import EvseReport, ReportKind
from idlefleet.ocpp.station import EvseRef
from tests.idlefleet.ocpp.harness import (
    PASSWORD,
    Station16,
    Station201,
    config,
    connected,
    now_iso,
    plan,
    until,
)


@asynccontextmanager
async def reporting(
    cfg: CentralConfig,
) -> AsyncIterator[tuple[CentralSystem, int, list[EvseReport]]]:
    reports: list[EvseReport] = []
    central = CentralSystem(cfg, on_report=reports.append)
    port = await central.start()
    try:
        yield central, port, reports
    finally:
        await central.stop()


def kinds(reports: list[EvseReport]) -> list[str]:
    return [r.kind.value for r in reports]


def test_a_201_session_is_reported_from_its_start_dated_by_the_station() -> None:
    async def scenario() -> None:
        async with (
            reporting(config(["CS-1"])) as (_, port, reports),
            connected(port, "CS-1", "ocpp2.0.1") as cs,
        ):
            assert isinstance(cs, Station201)
            await cs.boot()
            assert reports == []  # a boot says nothing about a car
            started_at = now_iso()
            await cs.call(
                call201.StatusNotification(
                    timestamp=started_at, connector_status="Occupied", evse_id=1, connector_id=1
                )
            )
            await cs.start_session("tx-1", soc_pct=20.0, power_w=7000.0)
            await cs.meter(soc_pct=21.0, power_w=7000.0)
            await until(lambda: len(reports) == 4)
            status, started, first, second = reports
            assert (status.kind, status.plugged_in, status.detail) == (
                ReportKind.STATUS,
                True,
                "Occupied",
            )
            assert status.time == parse_time(started_at) and status.transaction_id is None
            assert started.kind is ReportKind.SESSION_STARTED and started.plugged_in
            assert (started.transaction_id, started.id_token) == ("tx-1", "EVCCID-0A1B2C")
            assert first.kind is ReportKind.METER and first.sample is not None
            assert first.session_start_wh == 12_500.0  # the session's first register reading
            assert started.time <= first.sample.time  # the session starts before its samples
            assert second.sample is not None and second.sample.soc_pct == 21.0

    asyncio.run(scenario())


def test_a_16_session_counts_from_meter_start_and_ends_with_meter_stop() -> None:
    async def scenario() -> None:
        async with (
            reporting(config(["CS-1"])) as (_, port, reports),
            connected(port, "CS-1", "ocpp1.6") as cs,
        ):
            assert isinstance(cs, Station16)
            await cs.boot()
            await cs.start_session("-", soc_pct=50.0, power_w=11000.0)
            await cs.call(
                call16.StopTransaction(
                    meter_stop=15_000, timestamp=now_iso(), transaction_id=cs.transaction_id
                )
            )
            await cs.call(
                call16.StatusNotification(
                    connector_id=1, error_code="NoError", status="Available", timestamp=now_iso()
                )
            )
            await until(lambda: len(reports) == 4)
            assert kinds(reports) == ["session-started", "meter", "session-ended", "status"]
            started, meter, ended, unplugged = reports
            assert started.sample is not None and started.sample.energy_wh == 0.0
            assert meter.session_start_wh == 0.0 and meter.transaction_id == started.transaction_id
            assert ended.transaction_id == started.transaction_id and ended.sample is not None
            assert ended.sample.energy_wh == 15_000.0
            assert unplugged.plugged_in is False and unplugged.transaction_id is None

    asyncio.run(scenario())


def test_unreadable_meter_values_are_answered_and_reported_with_the_reason() -> None:
    async def scenario() -> None:
        async with (
            reporting(config(["CS-1"])) as (_, port, reports),
            connected(port, "CS-1", "ocpp2.0.1") as cs,
        ):
            bad = {
                "timestamp": now_iso(),
                "sampled_value": [
                    {
                        "value": 3.0,
                        "measurand": "Power.Active.Import",
                        "unit_of_measure": {"unit": "hp"},
                    }
                ],
            }
            await cs.call(call201.MeterValues(evse_id=1, meter_value=[bad]))
            [report] = reports
            assert report.kind is ReportKind.UNREADABLE and report.evse_id == 1
            assert (
                report.detail == "unreadable meter values: Power.Active.Import: unknown unit 'hp'"
            )

    asyncio.run(scenario())


def test_a_rejected_profile_reports_the_session_out_of_control() -> None:
    async def scenario() -> None:
        async with (
            reporting(config(["CS-1"])) as (central, port, reports),
            connected(port, "CS-1", "ocpp2.0.1") as cs,
        ):
            await cs.boot()
            await cs.start_session("tx-2", soc_pct=30.0, power_w=0.0)
            cs.reject = True
            assert await central.apply_plan({EvseRef("CS-1", 1): plan(4.5)}) == {
                EvseRef("CS-1", 1): False
            }
            control = reports[-1]
            assert (control.kind, control.controllable) == (ReportKind.CONTROL, False)
            assert control.detail == "rejected a TxProfile" and control.transaction_id == "tx-2"

    asyncio.run(scenario())


def test_a_station_with_a_hashed_password_connects_and_a_wrong_one_is_refused() -> None:
    cfg = config(["CS-1"])
    hashed = PasswordHash.make(PASSWORD, n=2**10)
    cfg = replace(cfg, stations={"CS-1": replace(cfg.stations["CS-1"], password=hashed)})

    async def scenario() -> None:
        async with reporting(cfg) as (central, port, _):
            for _ in range(2):  # the second time, known by its digest
                async with connected(port, "CS-1", "ocpp2.0.1") as cs:
                    await cs.boot()
                    await until(lambda: "TxDefaultProfile" in cs.purposes())
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connected(port, "CS-1", "ocpp2.0.1", password="guess"):
                    pass
            assert refused.value.response.status_code == 401
            assert central.registry.state("CS-1").connections == 2

    asyncio.run(scenario())
