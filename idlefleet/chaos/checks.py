"""What a chaos run is judged by: executions lost or duplicated, and owners left short."""

from __future__ import annotations

from datetime import timedelta

from idlefleet.sim.fleet import SimulatedCar
from streams.messages import Assignment, Message, Result


def lost_and_duplicates(
    accepted: set[tuple[str, int, str]], needed: dict[str, int], records: list[Message]
) -> tuple[int, int]:
    """Executions lost and shards accepted too often.

    `accepted`: (job, shard, vehicle) the service counts; `needed`: executions each shard of
    a job needs [count]; `records`: the assignments and results topics. Lost: a done result
    for work an assignment carried to that car, not counted although its shard still needs
    executions. Duplicates: shards with more accepted executions than they need.
    """
    carried = {
        (item.work_id, a.vehicle_id)
        for a in records
        if isinstance(a, Assignment)
        for item in a.work
    }
    per_shard: dict[tuple[str, int], int] = {}
    for job, shard, _ in accepted:
        per_shard[(job, shard)] = per_shard.get((job, shard), 0) + 1
    duplicates = sum(count > needed.get(job, 1) for (job, _), count in per_shard.items())
    lost = {
        (r.job_id, r.shard_index, r.vehicle_id)
        for r in records
        if isinstance(r, Result)
        and r.status == "done"
        and (r.work_id, r.vehicle_id) in carried
        and (r.job_id, r.shard_index, r.vehicle_id) not in accepted
        and per_shard.get((r.job_id, r.shard_index), 0) < needed.get(r.job_id, 1)
    }
    return len(lost), duplicates


def owner_shortfalls(fleet: list[SimulatedCar]) -> list[str]:
    """Cars that left with less than they were owed: their target, or as much as their charger
    could give over their stay if that is less."""
    shortfalls = []
    for car in fleet:
        parked_h = (car.departure - car.arrival) / timedelta(hours=1)
        owed = min(
            car.target_kwh,
            car.arrival_energy_kwh + car.charge_efficiency_frac * car.charger_kw * parked_h,
            car.battery_kwh,
        )
        left = car.energy_kwh if car.departure_energy_kwh is None else car.departure_energy_kwh
        if left < owed - 1e-6:
            shortfalls.append(f"{car.vehicle_id} left with {left:.3f} kWh, owed {owed:.3f}")
    return shortfalls
