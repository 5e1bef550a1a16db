"""The plan (contract scenario-v1, output): typed result of any strategy, no Pyomo.

Per-slot arrays have N entries; ``soc_kwh`` has N+1 boundary values, ``None`` outside the
vehicle's window. Power into the battery is positive.
"""

from __future__ import annotations

import enum
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
    charge_kw: tuple[float, ...]
    running: tuple[int, ...]
    soc_kwh: tuple[float | None, ...]


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
        }


@dataclass(frozen=True)
class Plan:
    """A plan: the schedule of every vehicle, site import, job outcomes and KPIs.

    An infeasible plan has empty schedules, ``objective`` None, a ``reason`` and the
    ``offending_ids`` (vehicles, sites, regions, DR events) that explain it.
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
            "plan_version": 1,
            "strategy": self.strategy,
            "status": self.status.value,
            "objective": self.objective,
            "best_bound": self.best_bound,
            "gap_frac": self.gap_frac,
            "solve_s": self.solve_s,
            "vehicles": {
                vid: {
                    "charge_kw": list(vs.charge_kw),
                    "running": list(vs.running),
                    "soc_kwh": list(vs.soc_kwh),
                }
                for vid, vs in self.vehicles.items()
            },
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
        if not self.is_feasible:
            doc["reason"] = self.reason or ""
            doc["offending_ids"] = list(self.offending_ids)
        return doc


def validate_plan_dict(doc: Any) -> None:
    """Raise :class:`PlanError` naming the field if ``doc`` breaks the plan JSON Schema."""
    validator = jsonschema.Draft202012Validator(load_schema("plan-v1"))
    error = best_match(validator.iter_errors(doc))
    if error is not None:
        raise PlanError(f"{json_path(error.absolute_path) or '(document)'}: {error.message}")


@dataclass(frozen=True)
class PlanSnapshot:
    """A feasible plan and the scenario it was made from."""

    plan: Plan
    scenario: Scenario


def plan_from_dict(doc: Mapping[str, Any]) -> Plan:
    """Parse a plan document written by :meth:`Plan.to_dict`."""
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
