"""The VEN against a real openleadr VTN started by the test, deciding with real HiGHS solves."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openleadr import OpenADRServer, utils

from idlefleet.openadr.mapping import DrMapping, DrMappingError, event_caps
from idlefleet.openadr.ven import OPT_IN, OPT_OUT, FleetVen
from idlefleet.service.dr import PlanningDecider
from idlefleet.sim.catalog import demo_sites
from optimizer import Scenario, format_timestamp, load_scenario
from streams.messages import DemandResponseEvent

SITES = demo_sites(1, 2)
SITE = SITES[0].site_id
VEN_ID = "ven-fleet"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def now_slot() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


def scenario_now() -> Scenario:
    """Two cars at the site for two hours, each owed 10 kWh from an 11 kW charger."""
    start = now_slot()
    cars = [
        {
            "id": f"car-{i}",
            "site": SITE,
            "arrival": format_timestamp(start),
            "departure": format_timestamp(start + timedelta(hours=2)),
            "battery_kwh": 60.0,
            "soc_kwh": 20.0,
            "target_kwh": 30.0,
            "charger_kw": 11.0,
            "charge_efficiency_frac": 1.0,
            "compute_kw": 0.3,
        }
        for i in range(2)
    ]
    return load_scenario(
        {
            "scenario_version": 1,
            "horizon": {"start": format_timestamp(start), "slot_minutes": 15, "slots": 16},
            "objective": {"carbon_price_per_tonne": 100.0},
            "regions": [{"id": "DE", "intensity_g_per_kwh": [300.0] * 16}],
            "sites": [{"id": SITE, "region": "DE", "grid_limit_kw": 30.0}],
            "vehicles": cars,
            "jobs": [],
        }
    )


class Recorder:
    """Publishes nowhere: remembers what the decider would publish to the DR topic."""

    def __init__(self) -> None:
        self.published: list[DemandResponseEvent] = []

    def __call__(self, cap: DemandResponseEvent) -> None:
        self.published.append(cap)


async def run_with_vtn(
    scenario: Callable[[], dict[str, Any]], body: Callable[..., Awaitable[None]]
) -> Recorder:
    port = free_port()
    responses: dict[str, asyncio.Future[str]] = {}
    reports: list[tuple[str, str, float]] = []

    async def on_create_party_registration(info: dict[str, Any]) -> tuple[str, str]:
        return VEN_ID, "reg-1"

    async def on_register_report(
        ven_id: str,
        resource_id: str,
        measurement: str,
        unit: str,
        scale: str,
        min_sampling_interval: timedelta,
        max_sampling_interval: timedelta,
    ) -> tuple[Callable[..., Awaitable[None]], timedelta]:
        async def on_update_report(data: list[tuple[datetime, float]]) -> None:
            reports.extend((resource_id, measurement, value) for _, value in data)

        return on_update_report, timedelta(seconds=1)

    server = OpenADRServer(
        vtn_id="vtn-test",
        http_port=port,
        http_host="127.0.0.1",
        requested_poll_freq=timedelta(seconds=0.5),
    )
    server.add_handler("on_create_party_registration", on_create_party_registration)
    server.add_handler("on_register_report", on_register_report)
    await server.run_async()
    recorder = Recorder()
    decider = PlanningDecider(scenario, recorder, lambda site: 21.5, lambda site: 7.25)
    ven = FleetVen(
        f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b",
        "fleet",
        SITES,
        decider,
    )
    try:
        await ven.run()

        def send(payload_kw: float, hours: float = 2.0) -> tuple[str, asyncio.Future[str]]:
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

            async def answered(ven_id: str, event_id: str, opt_type: str) -> None:
                if not future.done():
                    future.set_result(opt_type)

            event_id = server.add_event(
                ven_id=VEN_ID,
                signal_name="LOAD_DISPATCH",
                signal_type="setpoint",
                intervals=[
                    {
                        "dtstart": now_slot(),
                        "duration": timedelta(hours=hours),
                        "signal_payload": payload_kw,
                    }
                ],
                target={"resource_id": SITE},
                callback=answered,
            )
            responses[event_id] = future
            return event_id, future

        await body(server, ven, send, reports)
    finally:
        await ven.stop()
        await server.stop()
    return recorder


def test_an_honourable_event_is_answered_opt_in_and_its_caps_applied() -> None:
    async def body(server: OpenADRServer, ven: FleetVen, send: Any, reports: Any) -> None:
        event_id, answer = send(12.0)  # 20 kWh in 2 h needs 10 kW on average
        assert await asyncio.wait_for(answer, 30) == OPT_IN
        decision = ven.decisions[event_id]
        assert decision.honour and decision.plan_s > 0  # decided by a plan with the cap

    recorder = asyncio.run(run_with_vtn(scenario_now, body))
    [cap] = recorder.published
    assert cap.site_id == SITE and cap.max_import_kw == 12.0 and not cap.cancelled


def test_an_event_that_would_strand_owners_is_answered_opt_out() -> None:
    async def body(server: OpenADRServer, ven: FleetVen, send: Any, reports: Any) -> None:
        event_id, answer = send(2.0)  # 2 kW for two hours cannot deliver 20 kWh
        assert await asyncio.wait_for(answer, 30) == OPT_OUT
        assert "car-" in ven.decisions[event_id].reason

    recorder = asyncio.run(run_with_vtn(scenario_now, body))
    assert recorder.published == []


def test_a_cancellation_withdraws_the_caps() -> None:
    async def body(server: OpenADRServer, ven: FleetVen, send: Any, reports: Any) -> None:
        event_id, answer = send(15.0)
        assert await asyncio.wait_for(answer, 30) == OPT_IN
        server.cancel_event(VEN_ID, event_id)
        for _ in range(60):
            if event_id not in ven._caps:
                break
            await asyncio.sleep(0.25)

    recorder = asyncio.run(run_with_vtn(scenario_now, body))
    assert [cap.cancelled for cap in recorder.published] == [False, True]


def test_a_modified_event_is_decided_again() -> None:
    async def body(server: OpenADRServer, ven: FleetVen, send: Any, reports: Any) -> None:
        event_id, answer = send(15.0)
        assert await asyncio.wait_for(answer, 30) == OPT_IN
        event = utils.find_by(server.events[VEN_ID], "event_descriptor.event_id", event_id)
        event.event_signals[0].intervals[0]["signal_payload"] = 2.0
        utils.increment_event_modification_number(event)
        server.events_updated[VEN_ID] = True
        for _ in range(60):
            if not ven.decisions[event_id].honour:
                break
            await asyncio.sleep(0.25)
        assert not ven.decisions[event_id].honour

    recorder = asyncio.run(run_with_vtn(scenario_now, body))
    assert [cap.cancelled for cap in recorder.published] == [False, True]


def test_registration_is_retried_until_the_vtn_answers() -> None:
    async def scenario() -> None:
        port = free_port()
        decider = PlanningDecider(scenario_now, Recorder(), lambda s: 0.0, lambda s: 0.0)
        ven = FleetVen(
            f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b",
            "fleet",
            SITES,
            decider,
            retry_max_s=0.5,
        )
        task = asyncio.create_task(ven.run())
        await asyncio.sleep(2.0)
        assert not task.done() and not ven.registered.is_set()
        server = OpenADRServer(
            vtn_id="vtn-late",
            http_port=port,
            http_host="127.0.0.1",
            requested_poll_freq=timedelta(seconds=0.5),
        )

        async def register(info: dict[str, Any]) -> tuple[str, str]:
            return VEN_ID, "reg-late"

        server.add_handler("on_create_party_registration", register)
        await server.run_async()
        try:
            await asyncio.wait_for(task, 30)
            assert ven.registered.is_set()
        finally:
            await ven.stop()
            await server.stop()

    asyncio.run(scenario())


def test_simple_levels_and_unknown_targets_map_as_configured() -> None:
    mapping = DrMapping.for_sites(SITES)
    start = datetime(2020, 6, 1, 12, tzinfo=UTC)
    event = {
        "event_descriptor": {"event_id": "e1"},
        "targets": [{"resource_id": SITE}],
        "event_signals": [
            {
                "signal_name": "SIMPLE",
                "intervals": [
                    {"dtstart": start, "duration": timedelta(hours=1), "signal_payload": 2}
                ],
            }
        ],
    }
    [cap] = event_caps(event, mapping, SITES)
    assert cap.max_import_kw == pytest.approx(0.5 * SITES[0].grid_limit_kw)
    event["targets"] = [{"resource_id": "nowhere"}]
    with pytest.raises(DrMappingError, match="nowhere"):
        event_caps(event, mapping, SITES)


def test_site_load_and_flexibility_are_reported_to_the_vtn() -> None:
    async def body(server: OpenADRServer, ven: FleetVen, send: Any, reports: Any) -> None:
        for _ in range(80):
            if {(resource, value) for resource, _, value in reports} >= {
                (SITE, 21.5),
                (f"{SITE}.flexibility", 7.25),
            }:
                return
            await asyncio.sleep(0.25)
        raise AssertionError(f"reports received: {reports}")

    asyncio.run(run_with_vtn(scenario_now, body))
