"""The attacks of a world where anyone may write to the broker: nothing the service did not
see proven changes what a car does, what a site may import or which work counts as done."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from idlefleet.service.planner import PlannerService
from idlefleet.settings import PlannerSettings
from idlefleet.sites import load_sites
from streams.clients import KafkaSettings
from streams.identity import Identity
from streams.messages import Assignment, DemandResponseEvent
from streams.signing import RecordSigner
from tests.idlefleet.service.factories import (
    SLOT,
    T0,
    done,
    forecast,
    parked,
    short_job,
    work_assigned,
    write_sites,
)
from tests.streams import factories
from tests.streams.test_reader import read_dead_letters

CARS = ("car-a", "car-b")


@pytest.fixture
def world(kafka_settings: KafkaSettings) -> Iterator[factories.World]:
    world = factories.World(kafka_settings, {"planner": "service", **dict.fromkeys(CARS, "car")})
    yield world
    world.stop()


@pytest.fixture
def service(world: factories.World, tmp_path: Path) -> Iterator[PlannerService]:
    sites = load_sites(write_sites(tmp_path, ["depot-a"]))
    settings = PlannerSettings(group_id="planner", horizon_hours=2, solver_time_limit_s=10)
    running = PlannerService(world.kafka, settings, sites, trust=world.trust("planner")).start()
    yield running
    running.stop()


def reasons(kafka: KafkaSettings, count: int) -> list[str]:
    return [str(letter["reason"], "utf-8") for letter in read_dead_letters(kafka, count)]


def cap(event_id: str, max_import_kw: float, *, cancelled: bool = False) -> DemandResponseEvent:
    return factories.dr_event(
        event_id,
        site_id="depot-a",
        start=T0,
        end=T0 + timedelta(hours=1),
        max_import_kw=max_import_kw,
        cancelled=cancelled,
    )


def test_forged_dr_caps_and_cancels_change_nothing(
    world: factories.World, service: PlannerService
) -> None:
    world.publish([forecast(), parked("car-a", "depot-a")])
    world.publish([cap("utility-cap", 5.0)], "feeds")  # the utility's adapter: genuine
    factories.publish(world.kafka, [cap("forged-zero", 0.0)])  # unsigned
    rooted_car = factories.HandSigner(world.identities["car-a"])
    factories.publish(world.kafka, [cap("forged-by-car", 0.0)], rooted_car)
    factories.publish(world.kafka, [cap("utility-cap", 5.0, cancelled=True)])  # forged cancel
    assert service.catch_up()
    assert set(service.state.dr_events) == {"utility-cap"}
    assert not service.state.dr_events["utility-cap"].cancelled
    why = reasons(world.kafka, 3)
    assert why[0].startswith("unsigned record") and why[2].startswith("unsigned record")
    assert why[1] == "car 'car-a' may not write dr-events records"


def test_a_result_for_another_cars_work_is_never_counted(
    world: factories.World, service: PlannerService
) -> None:
    world.publish(
        [forecast(), parked("car-a", "depot-a"), parked("car-b", "depot-a"), short_job("embed", 4)]
    )
    assert service.catch_up()
    service.tick(T0)
    assignment, item = work_assigned(world.kafka, T0)[0]
    holder = assignment.vehicle_id
    thief = next(car for car in CARS if car != holder)
    leased = service.ledger_snapshot().progress["embed"].in_flight
    copied = done(assignment, item)  # copied from the public assignments topic
    factories.publish(world.kafka, [copied])  # unsigned
    thief_signer = RecordSigner([world.identities[thief]], world.trust().start().registry)
    with pytest.raises(Exception, match="no identity"):
        factories.publish(world.kafka, [copied], thief_signer)  # cannot sign as the holder
    as_thief = copied.model_copy(update={"vehicle_id": thief})
    factories.publish(world.kafka, [as_thief], thief_signer)  # signed, but not its lease
    assert service.catch_up()
    progress = service.ledger_snapshot().progress["embed"]
    assert (progress.accepted, progress.in_flight) == (0, leased)
    assert service.status().dead_letters == 1
    world.publish([copied], holder)  # the holder's own report counts
    assert service.catch_up()
    assert service.ledger_snapshot().progress["embed"].accepted == 1


def test_forged_assignments_and_a_forged_quorum_mark_no_honest_car_wrong(
    world: factories.World, service: PlannerService
) -> None:
    job = short_job("checked", 1).model_copy(update={"replicas": 2})
    world.publish([forecast(), parked("car-a", "depot-a"), parked("car-b", "depot-a"), job])
    assert service.catch_up()
    service.tick(T0)
    assignment, item = work_assigned(world.kafka, T0)[0]
    # two invented cars "ran" the same shard and agree on a forged output
    invented = [Identity.generate(f"ghost-{n}", "car") for n in range(2)]
    rogue_service = Identity.generate("planner", "service")
    for ghost in invented:
        forged = Assignment(
            **{
                **assignment.model_dump(),
                "assignment_id": f"forged-{ghost.principal}",
                "vehicle_id": ghost.principal,
                "work": [item.model_copy(update={"work_id": f"w-{ghost.principal}"})],
            }
        )
        factories.publish(world.kafka, [forged])  # unsigned
        factories.publish(world.kafka, [forged], RecordSigner([rogue_service]))  # not enrolled
        claimed = done(forged, forged.work[0]).model_copy(update={"output_sha256": "0" * 64})
        ghost_signer = RecordSigner([ghost], world.trust().start().registry)
        factories.publish(world.kafka, [claimed], ghost_signer)
    assert service.catch_up()
    assert service.status().dead_letters == 6
    assert all(reason for reason in reasons(world.kafka, 6))
    reliability = service.validator.reliability
    assert not any(reliability.suspect(car) for car in CARS)
    assert service.validator.canonical("checked", 0) is None
    assert service.ledger_snapshot().progress["checked"].accepted == 0
    assert service.job_outputs("checked") == []  # no forged output is offered to anyone


def test_a_cancelled_job_stays_cancelled_for_every_worker_and_after_a_restart(
    world: factories.World, service: PlannerService, tmp_path: Path
) -> None:
    world.publish([forecast(), parked("car-a", "depot-a"), short_job("embed", 2)])
    assert service.catch_up()
    assert service.cancel_job("embed", "operator-1")
    service.stop()
    sites = load_sites(write_sites(tmp_path, ["depot-a"]))
    settings = PlannerSettings(group_id="planner", horizon_hours=2, solver_time_limit_s=10)
    again = PlannerService(world.kafka, settings, sites, trust=world.trust("planner")).start()
    try:
        assert again.catch_up()
        assert again.cancelled_jobs == {"embed"}
        assert again.tick(T0 + SLOT).work_items == 0
    finally:
        again.stop()
