"""How fast a new plan reaches N OCPP stations, and what a connection costs the central system.

`idlefleet bench ocpp_stations [--stations N]` starts the central system (`idlefleet.ocpp`)
on loopback and, in a second process, N = 500 OCPP 2.0.1 stations (the `ocpp` library's
charge-point side), each booting and starting one session. It measures the central system's
RSS per connection, then the time from `apply_plan` (a 24-slot plan for every EVSE) to every
profile acknowledged. Baseline in the same run: the same N SetChargingProfile requests sent
through the bare `ocpp` library (prebuilt payloads, no idlefleet state). Last line:
`stations=… plan_to_acked_s=… baseline_s=… ratio=… rss_per_connection_kb=…`; goal
`plan_to_acked_s <= 5`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event
from typing import Any

from pydantic import SecretStr

from idlefleet.ocpp.central import CentralConfig, CentralSystem
from idlefleet.ocpp.profiles import EvseLimits, RateUnit, SlotPower, plan_schedule, to_v201
from idlefleet.ocpp.station import EvseRef, StationConfig, StationState

PASSWORD = "bench-password"
LIMITS = EvseLimits(max_power_kw=11.0, unit=RateUnit.A)


def rss_kb() -> int:
    """This process's resident set [kB]."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _stations(port: int, count: int, stop: Event) -> None:
    """The second process: `count` 2.0.1 stations, each booted with one session."""
    asyncio.run(_run_stations(port, count, stop))


async def _run_stations(port: int, count: int, stop: Event) -> None:
    import base64

    import websockets
    from ocpp.routing import on
    from ocpp.v201 import ChargePoint
    from ocpp.v201 import call as call201
    from ocpp.v201 import call_result as result201

    class Station(ChargePoint):  # a station that accepts every profile
        @on("SetChargingProfile")
        def on_profile(self, **_: Any) -> Any:
            return result201.SetChargingProfile(status="Accepted")

    async def one(index: int) -> None:
        station_id = f"CS-{index:04d}"
        auth = base64.b64encode(f"{station_id}:{PASSWORD}".encode()).decode()
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ocpp/{station_id}",
            subprotocols=[websockets.Subprotocol("ocpp2.0.1")],
            additional_headers={"Authorization": f"Basic {auth}"},
            ping_interval=None,
            open_timeout=60,
        ) as ws:
            station = Station(station_id, ws, response_timeout=60)
            task = asyncio.create_task(station.start())
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            await station.call(
                call201.BootNotification(
                    charging_station={"model": "Bench", "vendor_name": "Bench"}, reason="PowerUp"
                )
            )
            await station.call(
                call201.TransactionEvent(
                    event_type="Started",
                    timestamp=now,
                    trigger_reason="CablePluggedIn",
                    seq_no=0,
                    transaction_info={"transaction_id": f"tx-{index}"},
                    evse={"id": 1, "connector_id": 1},
                )
            )
            while not stop.is_set():
                await asyncio.sleep(0.2)
            task.cancel()

    await asyncio.gather(*(one(i) for i in range(count)))


def _ready(state: StationState) -> bool:
    return state.default_acknowledged and state.evse(1).transaction_id is not None


def _plan(start: datetime) -> list[SlotPower]:
    """24 slots of 15 min, alternating 11 kW and 4.2 kW."""
    slot = timedelta(minutes=15)
    return [
        SlotPower(start + i * slot, start + (i + 1) * slot, 11.0 - 6.8 * (i % 2)) for i in range(24)
    ]


async def _measure(count: int) -> tuple[float, float, float]:
    configs = {f"CS-{i:04d}": StationConfig(SecretStr(PASSWORD), evse=LIMITS) for i in range(count)}
    central = CentralSystem(CentralConfig(configs, heartbeat_s=3600, response_timeout_s=60))
    before_kb = rss_kb()
    port = await central.start()
    stop = multiprocessing.get_context("spawn").Event()
    child = multiprocessing.get_context("spawn").Process(
        target=_stations, args=(port, count, stop), daemon=True
    )
    child.start()
    try:
        deadline = time.monotonic() + 300
        while (
            sum(
                1
                for s in central.registry.known()
                if s.default_acknowledged and s.evse(1).transaction_id
            )
            < count
        ):
            if time.monotonic() > deadline or not child.is_alive():
                raise RuntimeError("the stations did not all connect, boot and start a session")
            await asyncio.sleep(0.2)
        per_connection_kb = (rss_kb() - before_kb) / count
        start = datetime.now(UTC).replace(second=0, microsecond=0)
        plans = {EvseRef(f"CS-{i:04d}", 1): _plan(start) for i in range(count)}

        started = time.perf_counter()
        answers = await central.apply_plan(plans)
        plan_s = time.perf_counter() - started
        if not all(answers.values()):
            raise RuntimeError(f"{sum(1 for a in answers.values() if not a)} profiles not acked")

        from ocpp.v201 import call as call201

        schedule = plan_schedule(_plan(start), LIMITS, datetime.now(UTC))
        links: dict[str, Any] = dict(central._links)  # the bare library's ChargePoint objects
        requests = {
            sid: call201.SetChargingProfile(
                evse_id=1, charging_profile=to_v201(schedule, 101, f"tx-{int(sid[3:])}")
            )
            for sid in links
        }
        started = time.perf_counter()
        await asyncio.gather(*(links[sid].call(request) for sid, request in requests.items()))
        baseline_s = time.perf_counter() - started
        return plan_s, baseline_s, per_connection_kb
    finally:
        stop.set()
        child.join(30)
        await central.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench ocpp_stations", description=__doc__)
    parser.add_argument("--stations", type=int, default=500)
    args = parser.parse_args(argv)
    plan_s, baseline_s, per_connection_kb = asyncio.run(_measure(args.stations))
    print(
        f"stations={args.stations} plan_to_acked_s={plan_s:.3f} baseline_s={baseline_s:.3f} "
        f"ratio={plan_s / baseline_s:.2f} rss_per_connection_kb={per_connection_kb:.1f}"
    )
    return 0 if plan_s <= 5.0 else 1
