"""A plan's charge powers for one car as the slots a TxProfile carries out.

A car the plan covers gets its planned grid power per slot [kW] over the plan's horizon
(`profiles.plan_schedule` keeps the slots not yet over and holds each within the EVSE's
limits). A car the plan leaves out (its charger does not follow profiles, or its data does not
let it be planned) is the planner's uncontrolled load at full power: a session that holds an
earlier plan's profile gets full power over the horizon instead, so no stale limit stays.
"""

from __future__ import annotations

from idlefleet.ocpp.profiles import SlotPower
from optimizer.plan import PlanSnapshot


def planned_slots(snapshot: PlanSnapshot, vehicle_id: str) -> list[SlotPower] | None:
    """The car's planned power per slot of the plan's horizon; None if the plan has no car
    by that id."""
    schedule = snapshot.plan.vehicles.get(vehicle_id)
    if schedule is None:
        return None
    return _slots(snapshot, list(schedule.charge_kw))


def full_power_slots(snapshot: PlanSnapshot, max_power_kw: float) -> list[SlotPower]:
    """`max_power_kw` [kW] in every slot of the plan's horizon."""
    return _slots(snapshot, [max_power_kw] * snapshot.scenario.horizon.slots)


def _slots(snapshot: PlanSnapshot, powers_kw: list[float]) -> list[SlotPower]:
    horizon = snapshot.scenario.horizon
    return [
        SlotPower(horizon.slot_start(i), horizon.slot_start(i + 1), power_kw)
        for i, power_kw in enumerate(powers_kw[: horizon.slots])
    ]
