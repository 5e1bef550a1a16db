"""The VEN against a real openleadr VTN started by the test, deciding with real HiGHS solves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openleadr import OpenADRServer, utils

from idlefleet.openadr.mapping import DrMapping, DrMappingError, event_caps
from idlefleet.openadr.ratelimit import EventRate
from idlefleet.openadr.ven import OPT_IN, OPT_OUT, FleetVen
from idlefleet.service.dr import PlanningDecider
from tests.idlefleet.openadr.harness import (
    SITE,
    SITES,
    VEN_ID,
    LiveVtn,
    Recorder,
    free_port,
    lab,
    registered_ven,
    running_vtn,
    scenario_now,
    wait_until,
)


async def with_vtn(body: Any, rate: EventRate | None = None) -> Recorder:
    """Run `body(vtn, ven)` with a lab VTN and a VEN registered with it; what it published."""
    recorder = Recorder()
    decider = PlanningDecider(scenario_now, recorder, lambda site: 21.5, lambda site: 7.25)
    async with running_vtn() as vtn, registered_ven(lab(vtn.url), decider, rate=rate) as ven:
        await body(vtn, ven)
    return recorder


def test_an_honourable_event_is_answered_opt_in_and_its_caps_applied() -> None:
    async def body(vtn: LiveVtn, ven: FleetVen) -> None:
        event_id, answer = vtn.send(12.0)  # 20 kWh in 2 h needs 10 kW on average
        assert await asyncio.wait_for(answer, 30) == OPT_IN
        decision = ven.decisions[event_id]
        assert decision.honour and decision.plan_s > 0  # decided by a plan with the cap

    recorder = asyncio.run(with_vtn(body))
    [cap] = recorder.published
    assert cap.site_id == SITE and cap.max_import_kw == 12.0 and not cap.cancelled


def test_an_event_that_would_strand_owners_is_answered_opt_out() -> None:
    async def body(vtn: LiveVtn, ven: FleetVen) -> None:
        event_id, answer = vtn.send(2.0)  # 2 kW for two hours cannot deliver 20 kWh
        assert await asyncio.wait_for(answer, 30) == OPT_OUT
        assert "car-" in ven.decisions[event_id].reason

    recorder = asyncio.run(with_vtn(body))
    assert recorder.published == []


def test_a_cancellation_withdraws_the_caps() -> None:
    async def body(vtn: LiveVtn, ven: FleetVen) -> None:
        event_id, answer = vtn.send(15.0)
        assert await asyncio.wait_for(answer, 30) == OPT_IN
        vtn.server.cancel_event(VEN_ID, event_id)
        await wait_until(lambda: event_id not in ven._caps)

    recorder = asyncio.run(with_vtn(body))
    assert [cap.cancelled for cap in recorder.published] == [False, True]


def test_a_modified_event_is_decided_again() -> None:
    async def body(vtn: LiveVtn, ven: FleetVen) -> None:
        event_id, answer = vtn.send(15.0)
        assert await asyncio.wait_for(answer, 30) == OPT_IN
        event = utils.find_by(vtn.server.events[VEN_ID], "event_descriptor.event_id", event_id)
        event.event_signals[0].intervals[0]["signal_payload"] = 2.0
        utils.increment_event_modification_number(event)
        vtn.server.events_updated[VEN_ID] = True
        await wait_until(lambda: not ven.decisions[event_id].honour)

    recorder = asyncio.run(with_vtn(body))
    assert [cap.cancelled for cap in recorder.published] == [False, True]


def test_a_flood_of_events_beyond_the_rate_is_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two events may pass at once, then one a minute: of five sent together three are
    answered optOut unplanned, nothing of theirs is published, and each refusal is logged."""
    answers: list[str] = []

    async def body(vtn: LiveVtn, ven: FleetVen) -> None:
        sent = [vtn.send(15.0) for _ in range(5)]
        answers.extend(await asyncio.wait_for(asyncio.gather(*(a for _, a in sent)), 30))

    recorder = asyncio.run(with_vtn(body, EventRate(per_minute=1.0, burst=2)))
    assert sorted(answers) == [OPT_IN] * 2 + [OPT_OUT] * 3
    assert len(recorder.published) == 2
    refusals = [r for r in caplog.records if "more events than the limit" in r.getMessage()]
    assert len(refusals) == 3 and all(r.levelname == "WARNING" for r in refusals)


def test_registration_is_retried_until_the_vtn_answers() -> None:
    async def scenario() -> None:
        port = free_port()
        decider = PlanningDecider(scenario_now, Recorder(), lambda s: 0.0, lambda s: 0.0)
        ven = FleetVen(
            lab(f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"),
            "fleet",
            SITES,
            decider,
            rate=EventRate(per_minute=1.0, burst=1),
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
    async def body(vtn: LiveVtn, ven: FleetVen) -> None:
        expected = {(SITE, 21.5), (f"{SITE}.flexibility", 7.25)}
        await wait_until(
            lambda: {(resource, value) for resource, _, value in vtn.reports} >= expected, 20
        )

    asyncio.run(with_vtn(body))
