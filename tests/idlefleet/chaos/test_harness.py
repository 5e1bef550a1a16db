"""Faults: the service and agents killed with SIGKILL and restarted, the broker frozen, and
nothing lost, nothing counted twice, every owner whole. Plus the verdict's own arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from idlefleet.chaos.checks import lost_and_duplicates, owner_shortfalls
from idlefleet.chaos.harness import ChaosConfig, run_chaos, summary_line
from idlefleet.sim.catalog import demo_sites
from idlefleet.sim.fleet import SimulatedCar
from streams.catalog import MODEL
from streams.messages import Assignment, Message, Result, WorkItem
from tests.streams.factories import result

T0 = datetime(2020, 6, 1, 12, tzinfo=UTC)


def test_a_day_under_sigkills_and_a_frozen_broker_loses_nothing_and_keeps_owners_whole(
    tmp_path: Path,
) -> None:
    config = ChaosConfig(
        runs=1,
        cars=6,
        hours=12,
        seed=3,
        service_kills=2,
        agent_kills=2,
        max_freeze_s=10,
        work_dir=tmp_path,  # the workers' logs stay there
    )
    [outcome] = run_chaos(config)
    assert (outcome.service_kills, outcome.agent_kills) == (2, 2)
    assert outcome.executions_done > 0
    assert outcome.lost == 0 and outcome.duplicates == 0
    assert outcome.owner_violations == []
    assert outcome.health_went_down and outcome.health_came_back
    assert summary_line([outcome]) == "runs=1 lost=0 duplicates=0 owner_violations=0"


def carried(vehicle: str, work_id: str, shard: int) -> Assignment:
    return Assignment(
        assignment_id=f"a-{work_id}",
        plan_id="p",
        vehicle_id=vehicle,
        slot_start=T0,
        slot_end=T0 + timedelta(minutes=15),
        charge_power_kw=0.0,
        work=[
            WorkItem(
                work_id=work_id,
                job_id="job",
                shard_index=shard,
                model=MODEL,
                input_uri="/in.npy",
                output_uri="/out",
            )
        ],
    )


def done(vehicle: str, work_id: str, shard: int) -> Result:
    """The car's done result for the work `carried` would give it."""
    assignment = carried(vehicle, work_id, shard)
    return result(assignment, assignment.work[0])


def test_the_verdict_counts_a_dropped_result_as_lost_and_an_extra_acceptance_as_duplicate() -> None:
    records: list[Message] = [
        carried("a", "w0", 0),
        done("a", "w0", 0),  # counted
        carried("b", "w1", 1),
        done("b", "w1", 1),  # dropped although shard 1 still needs it: lost
        done("c", "w2", 2),  # no assignment carried it: not the service's to count
    ]
    accepted = {("job", 0, "a"), ("job", 3, "x"), ("job", 3, "y")}
    assert lost_and_duplicates(accepted, {"job": 1}, records) == (1, 1)
    assert lost_and_duplicates(accepted, {"job": 2}, records) == (1, 0)
    assert lost_and_duplicates({("job", 0, "a"), ("job", 1, "b")}, {"job": 1}, records) == (0, 0)


def test_an_owner_short_of_what_the_charger_could_give_is_a_violation() -> None:
    [site] = demo_sites(1, 1)
    car = SimulatedCar(
        vehicle_id="car-1",
        site=site,
        arrival=T0,
        departure=T0 + timedelta(hours=2),
        battery_kwh=60.0,
        arrival_energy_kwh=20.0,
        reserve_kwh=15.0,
        target_kwh=48.0,
        participating=True,
    )
    car.departure_energy_kwh = 39.0  # 2 h at 11 kW x 0.92 could give 40.24 kWh: owed 40.24
    assert owner_shortfalls([car]) == ["car-1 left with 39.000 kWh, owed 40.240"]
    car.departure_energy_kwh = 40.24
    assert owner_shortfalls([car]) == []
