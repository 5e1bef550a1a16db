"""The plan (contract scenario-v2, output): typed result of any strategy, no Pyomo.

Per-slot arrays have N entries; ``soc_kwh`` has N+1 boundary values, ``None`` outside the
vehicle's window. Power into the battery is positive.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from optimizer.errors import PlanError
from optimizer.loader import json_path, load_schema
from optimizer.problem import Scenario


class SolveStatus(enum.StrEnum):
    """Outcome of a solve. ``error`` never reaches a :class:`Plan`: it raises ``SolveError``."""

    optimal = "optimal"
    feasible = "feasible"
    infeasible = "infeasible"
    error = "error"

    @property
    def has_schedule(self) -> bool:
        return self in (SolveStatus.optimal, SolveStatus.feasible)


@dataclass(frozen=True)
class VehicleSchedule:
    """Per slot: grid power drawn [kW] and the accelerator's state; soc at boundaries [kWh];
    the energy the car leaves short of its required departure energy [kWh] and what limits it."""

    charge_kw: tuple[float, ...]
    running: tuple[int, ...]
    soc_kwh: tuple[float | None, ...]
    shortfall_kwh: float = 0.0
    limited_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assignment:
    """``shards`` shards of ``job`` run on ``vehicle`` in ``slot``."""

    job: str
    vehicle: str
    slot: int
    shards: int


@dataclass(frozen=True)
class JobOutcome:
    executions: int
    unmet: int


@dataclass(frozen=True)
class Kpis:
    """Contract KPIs of a schedule; costs in currency, ``emissions_kg`` includes deferred."""

    emissions_kg: float
    deferred_emissions_kg: float
    grid_energy_kwh: float
    pv_energy_kwh: float
    energy_cost: float
    wear_cost: float
    battery_throughput_kwh: float
    unmet_shards: int
    #: Energy departing cars leave short of what they were owed, summed [kWh].
    shortfall_kwh: float = 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {
            "emissions_kg": self.emissions_kg,
            "deferred_emissions_kg": self.deferred_emissions_kg,
            "grid_energy_kwh": self.grid_energy_kwh,
            "pv_energy_kwh": self.pv_energy_kwh,
            "energy_cost": self.energy_cost,
            "wear_cost": self.wear_cost,
            "battery_throughput_kwh": self.battery_throughput_kwh,
            "unmet_shards": self.unmet_shards,
            "shortfall_kwh": self.shortfall_kwh,
        }


@dataclass(frozen=True)
class Plan:
    """A plan: the schedule of every vehicle, site import, job outcomes and KPIs.

    A plan with shortfall says why in ``reason`` and names the short vehicles and what limits
    them (sites, DR events) in ``offending_ids``. A version-1 document could also hold an
    infeasible plan: empty schedules, ``objective`` None, with ``reason`` and ``offending_ids``.
    """

    strategy: str
    status: SolveStatus
    objective: float | None
    best_bound: float | None = None
    gap_frac: float | None = None
    solve_s: float = 0.0
    vehicles: Mapping[str, VehicleSchedule] = field(default_factory=dict)
    assignments: tuple[Assignment, ...] = ()
    grid_import_kw: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    jobs: Mapping[str, JobOutcome] = field(default_factory=dict)
    kpis: Kpis | None = None
    reason: str | None = None
    offending_ids: tuple[str, ...] = ()

    @property
    def is_feasible(self) -> bool:
        return self.status.has_schedule

    def to_dict(self) -> dict[str, Any]:
        """The contract's plan JSON document."""
        doc: dict[str, Any] = {
            "plan_version": 2,
            "strategy": self.strategy,
            "status": self.status.value,
            "objective": self.objective,
            "best_bound": self.best_bound,
            "gap_frac": self.gap_frac,
            "solve_s": self.solve_s,
            "vehicles": {vid: _schedule_dict(vs) for vid, vs in self.vehicles.items()},
            "assignments": [
                {"job": a.job, "vehicle": a.vehicle, "slot": a.slot, "shards": a.shards}
                for a in self.assignments
            ],
            "sites": {
                sid: {"grid_import_kw": list(imp)} for sid, imp in self.grid_import_kw.items()
            },
            "jobs": {
                jid: {"executions": o.executions, "unmet": o.unmet} for jid, o in self.jobs.items()
            },
            "kpis": {} if self.kpis is None else self.kpis.to_dict(),
        }
        if self.reason is not None:
            doc["reason"] = self.reason
            doc["offending_ids"] = list(self.offending_ids)
        return doc

    @property
    def shortfall_kwh(self) -> float:
        """Energy departing cars leave short of what they were owed, summed [kWh]."""
        return math.fsum(vs.shortfall_kwh for vs in self.vehicles.values())


def _schedule_dict(vs: VehicleSchedule) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "charge_kw": list(vs.charge_kw),
        "running": list(vs.running),
        "soc_kwh": list(vs.soc_kwh),
        "shortfall_kwh": vs.shortfall_kwh,
    }
    if vs.limited_by:
        doc["limited_by"] = list(vs.limited_by)
    return doc


def validate_plan_dict(doc: Any) -> None:
    """Raise :class:`PlanError` naming the field if ``doc`` breaks the plan JSON Schema of its
    version (1 or 2)."""
    version = doc.get("plan_version") if isinstance(doc, Mapping) else None
    validator = jsonschema.Draft202012Validator(load_schema(f"plan-v{1 if version == 1 else 2}"))
    error = best_match(validator.iter_errors(doc))
    if error is not None:
        raise PlanError(f"{json_path(error.absolute_path) or '(document)'}: {error.message}")


@dataclass(frozen=True)
class PlanSnapshot:
    """A feasible plan, the scenario it was made from, and where each region's carbon
    intensity came from (region -> the signal's source, e.g. a live feed or a labelled
    fallback; empty when not told)."""

    plan: Plan
    scenario: Scenario
    intensity_sources: Mapping[str, str] = field(default_factory=dict)


def plan_from_dict(doc: Mapping[str, Any]) -> Plan:
    """Parse a plan document written by :meth:`Plan.to_dict` (version 2) or version 1."""
    validate_plan_dict(doc)
    kpis = doc["kpis"]
    return Plan(
        strategy=doc["strategy"],
        status=SolveStatus(doc["status"]),
        objective=doc["objective"],
        best_bound=doc["best_bound"],
        gap_frac=doc["gap_frac"],
        solve_s=float(doc["solve_s"]),
        vehicles={
            vid: VehicleSchedule(
                charge_kw=tuple(float(x) for x in vs["charge_kw"]),
                running=tuple(int(x) for x in vs["running"]),
                soc_kwh=tuple(None if x is None else float(x) for x in vs["soc_kwh"]),
                shortfall_kwh=float(vs.get("shortfall_kwh", 0.0)),
                limited_by=tuple(vs.get("limited_by", ())),
            )
            for vid, vs in doc["vehicles"].items()
        },
        assignments=tuple(
            Assignment(job=a["job"], vehicle=a["vehicle"], slot=a["slot"], shards=a["shards"])
            for a in doc["assignments"]
        ),
        grid_import_kw={
            sid: tuple(float(x) for x in s["grid_import_kw"]) for sid, s in doc["sites"].items()
        },
        jobs={
            jid: JobOutcome(executions=o["executions"], unmet=o["unmet"])
            for jid, o in doc["jobs"].items()
        },
        kpis=Kpis(**kpis) if kpis else None,
        reason=doc.get("reason"),
        offending_ids=tuple(doc.get("offending_ids", ())),
    )
