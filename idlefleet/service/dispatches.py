"""From a plan's slot to what each car does: its charge set-point and its shards per job.

A car the plan does not cover gets the owner-first fallback (`safe_dispatch`).
"""

from __future__ import annotations

from executor.dispatch import SlotDispatch
from idlefleet.service.inputs import job_of
from optimizer import Plan
from streams.messages import Telemetry


def slot_dispatches(plan: Plan, slot: int) -> list[SlotDispatch]:
    """What each planned vehicle does in slot `slot` of the plan."""
    work: dict[str, dict[str, int]] = {}
    for a in plan.assignments:
        if a.slot == slot:
            by_job = work.setdefault(a.vehicle, {})
            by_job[job_of(a.job)] = by_job.get(job_of(a.job), 0) + a.shards
    return [
        SlotDispatch(
            vehicle_id=vehicle_id,
            charge_power_kw=max(0.0, schedule.charge_kw[slot]),
            shards_by_job=work.get(vehicle_id, {}),
        )
        for vehicle_id, schedule in sorted(plan.vehicles.items())
    ]


def safe_dispatch(t: Telemetry) -> SlotDispatch:
    """Owner-first fallback for a car without a plan: charge at full power below target."""
    power = t.charger_kw if t.energy_kwh < t.target_kwh else 0.0
    return SlotDispatch(vehicle_id=t.vehicle_id, charge_power_kw=power, shards_by_job={})
