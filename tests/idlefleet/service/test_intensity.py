"""Which intensity the service plans on: published signals where they cover the horizon, the
labelled fallback elsewhere, and a live feed replacing the fallback at the next plan."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from idlefleet.forecast_messages import IntensityFallback
from idlefleet.gridfeeds.poller import FeedPoller
from idlefleet.gridfeeds.runner import feed_sources
from idlefleet.service.inputs import planning_intensity, rolling_scenario
from idlefleet.service.planner import PlannerService
from idlefleet.settings import ElectricityMapsSettings, PlannerSettings
from idlefleet.sim.clock import SteppedClock
from idlefleet.sites import load_sites
from optimizer import check_plan, load_scenario, plan_scenario, scenario_to_dict
from streams.clients import KafkaSettings
from streams.messages import GridSignal
from streams.state import FleetState
from streams.topics import Stream
from tests.idlefleet.gridfeeds.feed_server import (
    API_KEY,
    FeedServer,
    electricitymaps_doc,
    json_answer,
)
from tests.idlefleet.service.factories import write_sites
from tests.streams import factories

#: A Saturday in December: the shipped excerpt (May-June 2020) holds no such week.
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SLOT = timedelta(minutes=15)
SETTINGS = PlannerSettings(group_id="planner", horizon_hours=4, solver_time_limit_s=10)
FALLBACK_DE = (
    "fallback: DE 2020 same weekday and hour, mean over 17 May-30 Jun 2020, shifted to 2026-12-05"
)


@pytest.fixture(scope="module")
def fallback() -> IntensityFallback:
    return IntensityFallback()


def signal(values: list[float], start: datetime, region: str = "DE") -> GridSignal:
    return factories.grid_signal(values, region=region, start=start, issued_at=start)


def state_with(*signals: GridSignal) -> FleetState:
    state = FleetState()
    for published in signals:
        state.apply_grid(published)
    return state


def test_with_nothing_published_the_whole_horizon_is_the_labelled_fallback(
    fallback: IntensityFallback,
) -> None:
    intensity = planning_intensity(NOW, FleetState(), {"DE", "GB"}, SETTINGS, fallback)
    assert set(intensity) == {"DE", "GB"}
    de = intensity["DE"]
    assert de.source == FALLBACK_DE and de.on_fallback and de.fallback_slots == 16
    profile = fallback.profile("DE")
    assert profile is not None
    expected = profile.values(NOW, 15, 16).intensity_g_per_kwh
    assert de.intensity_g_per_kwh == pytest.approx(expected)
    assert planning_intensity(NOW, FleetState(), {"DE"}, SETTINGS) == {}  # no fallback: none


def test_a_signal_ending_early_is_continued_by_the_fallback(fallback: IntensityFallback) -> None:
    state = state_with(signal([123.0] * 8, NOW - SLOT))  # covers 7 slots from NOW
    de = planning_intensity(NOW, state, {"DE"}, SETTINGS, fallback)["DE"]
    assert de.intensity_g_per_kwh[:7] == (123.0,) * 7
    assert de.fallback_slots == 9 and not de.on_fallback
    assert de.source == f"test, then {FALLBACK_DE}"
    # Without a fallback the horizon shrinks to the signal, as it always did.
    alone = planning_intensity(NOW, state, {"DE"}, SETTINGS)["DE"]
    assert alone.intensity_g_per_kwh == (123.0,) * 7 and alone.source == "test"


def test_a_signal_starting_later_takes_over_from_the_fallback(fallback: IntensityFallback) -> None:
    state = state_with(signal([50.0] * 40, NOW + 4 * SLOT))
    de = planning_intensity(NOW, state, {"DE"}, SETTINGS, fallback)["DE"]
    assert de.intensity_g_per_kwh[4:] == (50.0,) * 12 and de.fallback_slots == 4
    assert de.on_fallback and de.source == f"{FALLBACK_DE} (and test where it covers)"
    # Without a fallback nothing covers now: no plan (and no crash).
    assert planning_intensity(NOW, state, {"DE"}, SETTINGS) == {}


def test_a_region_without_2020_data_is_planned_only_on_what_is_published(
    fallback: IntensityFallback,
) -> None:
    state = state_with(signal([80.0] * 6, NOW, region="CAISO"))
    intensity = planning_intensity(NOW, state, {"CAISO", "FR"}, SETTINGS, fallback)
    assert intensity["CAISO"].intensity_g_per_kwh == (80.0,) * 6  # the horizon shrinks
    assert len(intensity["FR"].intensity_g_per_kwh) == 6 and intensity["FR"].on_fallback
    assert planning_intensity(NOW, FleetState(), {"CAISO"}, SETTINGS, fallback) == {}


def test_a_scenario_on_the_fallback_is_a_valid_contract_scenario(
    fallback: IntensityFallback, tmp_path: Path
) -> None:
    sites = load_sites(write_sites(tmp_path, ["depot-a"]))
    state = FleetState()
    state.apply_telemetry(owed_car(NOW))
    built = rolling_scenario(NOW, state, sites, [], SETTINGS, fallback=fallback)
    assert built is not None
    scenario = load_scenario(scenario_to_dict(built))
    plan = plan_scenario(scenario, "milp")
    assert plan.is_feasible and check_plan(scenario, plan) == []
    assert plan.vehicles["car-a"].shortfall_kwh == 0.0


def owed_car(now: datetime) -> factories.Telemetry:
    """At depot-a since a minute ago, owed 10 kWh (30 of 40) within two hours."""
    return factories.telemetry(
        "car-a",
        event_time=now - timedelta(minutes=1),
        site_id="depot-a",
        energy_kwh=30.0,
        reserve_kwh=0.0,
        target_kwh=40.0,
        expected_departure=now + timedelta(hours=2),
    )


@pytest.fixture
def world(kafka_settings: KafkaSettings) -> Iterator[factories.World]:
    world = factories.World(kafka_settings, {"planner": "service", "car-a": "car"})
    yield world
    world.stop()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


def test_the_service_plans_on_the_fallback_until_a_live_feed_replaces_it(
    world: factories.World,
    feed_server: FeedServer,
    fallback: IntensityFallback,
    tmp_path: Path,
) -> None:
    """Real broker, signed records: nothing published -> plans on the fallback and says so;
    a live Electricity-Maps-shaped feed polled and published through the service's signed
    publisher -> the next plan is on it; past its end the fallback continues it."""
    sites = load_sites(write_sites(tmp_path, ["depot-a"]))
    clock = SteppedClock(NOW)
    service = PlannerService(
        world.kafka, SETTINGS, sites, trust=world.trust("planner"), clock=clock, fallback=fallback
    ).start()
    try:
        world.publish([owed_car(NOW)], "car-a")
        first = service.tick(NOW)
        record = first.replanned
        assert record is not None and record.on_fallback == ("DE",)
        assert record.intensity_sources == {"DE": FALLBACK_DE}
        assert record.fallback_slots == {"DE": 16}
        assert first.assignments == 1 and record.vehicles == 1
        assert service.current_plan is not None
        assert service.current_plan.plan.vehicles["car-a"].shortfall_kwh == 0.0
        notes = [f"planning on fallback intensity for DE ({FALLBACK_DE})"]
        assert service.health_notes() == notes
        assert service.status().degraded == tuple(notes)

        # The live feed: HTTP -> poller -> signed publisher -> grid-signals -> service.
        feed_server.default = json_answer(electricitymaps_doc(NOW, hours=6, value=100.0))
        settings = ElectricityMapsSettings(url=feed_server.url, api_key=API_KEY)  # type: ignore[arg-type]
        [source] = feed_sources(["DE"], electricitymaps=settings)
        assert service.trust is not None
        publisher = service.trust.publisher()
        poller = FeedPoller(
            [source],
            lambda s: (publisher.publish(Stream.GRID_SIGNALS, s), publisher.flush()),
            SETTINGS.slot_minutes,
            SETTINGS.horizon_hours,
            clock,
            jitter_frac=0.0,
        )
        try:
            assert poller.poll(source)
        finally:
            publisher.close()
        clock.now = NOW + SLOT
        live = service.tick(NOW + SLOT).replanned
        assert live is not None and "grid-signal" in live.reasons
        assert live.on_fallback == () and live.fallback_slots == {}
        assert live.intensity_sources == {
            "DE": "live electricitymaps forecast for DE (average intensity)"
        }
        assert service.current_plan is not None
        region = service.current_plan.scenario.regions[0]
        assert region.intensity_g_per_kwh[:5] == (100.0, 100.0, 100.0, 110.0, 110.0)
        assert service.health_notes() == []
        assert service.dead_letters == 0

        # Five hours on, the feed (6 h) covers one more hour: the fallback continues it.
        later = NOW + timedelta(hours=5)
        clock.now = later
        tail = service.tick(later).replanned
        assert tail is not None and tail.fallback_slots == {"DE": 12}
        assert tail.intensity_sources["DE"].startswith("live electricitymaps forecast")
        assert tail.on_fallback == () and service.health_notes() == []
    finally:
        service.stop()
