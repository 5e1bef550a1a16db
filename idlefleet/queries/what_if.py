"""What-if planning: a scenario, or the current one with overrides, planned without committing.

Errors name the request's fields: `scenario_json.vehicles[3].soc_kwh: ...` for a document,
`overrides.dr_events[0].max_import_kw: ...` for an override.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from idlefleet.queries.errors import InvalidFieldError, OutOfTimeError
from idlefleet.queries.solver import ApiSolver
from idlefleet.settings import ApiSettings
from optimizer import (
    DrEvent,
    Plan,
    Scenario,
    ScenarioError,
    SolveError,
    load_scenario,
    plan_scenario,
    scenario_to_dict,
)
from optimizer import Job as ScenarioJob

#: Share of the call's remaining time the solver may use; the rest builds the model and replies.
DEADLINE_SHARE = 0.5
#: Time the child may take beyond the solver's limit [s]: building the model and reading
#: the plan back (the call's deadline may cut it shorter).
BUILD_ALLOWANCE_S = 60.0
#: Below this solver budget [s] a what-if is not started.
MIN_SOLVE_S = 0.05

#: Scenario keys whose request fields are named differently.
_FIELD_NAMES = {
    "dr_events": {"id": "event_id", "site": "site_id"},
    "jobs": {"id": "job_id", "sites": "site_ids"},
}


@dataclass(frozen=True)
class Overrides:
    """Changes to the current scenario: events and jobs to add, as scenario objects."""

    carbon_price_per_tonne: float | None = None
    grid_limit_kw_by_site: Mapping[str, float] = field(default_factory=dict)
    remove_vehicle_ids: tuple[str, ...] = ()
    dr_events: tuple[DrEvent, ...] = ()
    jobs: tuple[ScenarioJob, ...] = ()


def scenario_from_json(text: str) -> Scenario:
    """A complete scenario-v1 document sent as text (never read as a file path)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:  # also too deep, or an integer of >4300 digits
        raise InvalidFieldError("scenario_json", f"not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidFieldError("scenario_json", "must be a JSON object")
    try:
        return load_scenario(doc)
    except ScenarioError as exc:
        raise InvalidFieldError(f"scenario_json.{exc.path}", exc.problem) from exc


def overridden_scenario(current: Scenario, overrides: Overrides) -> Scenario:
    """The current scenario with `overrides` applied, written, loaded and checked."""
    sites = current.site_by_id
    for site_id in overrides.grid_limit_kw_by_site:
        if site_id not in sites:
            raise InvalidFieldError(f"overrides.grid_limit_kw_by_site[{site_id!r}]", "unknown site")
    parked = current.vehicle_by_id
    for i, vehicle_id in enumerate(overrides.remove_vehicle_ids):
        if vehicle_id not in parked:
            raise InvalidFieldError(
                f"overrides.remove_vehicle_ids[{i}]", f"{vehicle_id!r} is not in the scenario"
            )
    for i, event in enumerate(overrides.dr_events):
        if event.site is not None and event.site not in sites:
            raise InvalidFieldError(f"overrides.dr_events[{i}].site_id", "unknown site")
        if event.region is not None and event.region not in current.region_by_id:
            raise InvalidFieldError(f"overrides.dr_events[{i}].region", "unknown region")
    for i, job in enumerate(overrides.jobs):
        for j, site_id in enumerate(job.sites or ()):
            if site_id not in sites:
                raise InvalidFieldError(f"overrides.jobs[{i}].site_ids[{j}]", "unknown site")
    limits = overrides.grid_limit_kw_by_site
    removed = set(overrides.remove_vehicle_ids)
    changed = replace(
        current,
        carbon_price_per_tonne=(
            current.carbon_price_per_tonne
            if overrides.carbon_price_per_tonne is None
            else overrides.carbon_price_per_tonne
        ),
        sites=tuple(
            replace(site, grid_limit_kw=limits[site.id]) if site.id in limits else site
            for site in current.sites
        ),
        vehicles=tuple(v for v in current.vehicles if v.id not in removed),
        dr_events=(*current.dr_events, *overrides.dr_events),
        jobs=(*current.jobs, *overrides.jobs),
    )
    doc = scenario_to_dict(changed)
    firsts = {"dr_events": len(current.dr_events), "jobs": len(current.jobs)}
    try:
        return load_scenario(doc)
    except ScenarioError as exc:
        path = _override_path(exc.path, doc, firsts, overrides)
        raise InvalidFieldError(path, exc.problem) from exc


def _override_path(
    path: str, doc: Mapping[str, Any], firsts: Mapping[str, int], overrides: Overrides
) -> str:
    """The request field behind a scenario path, or `overrides` when the path is not one."""
    if path == "objective.carbon_price_per_tonne":
        return "overrides.carbon_price_per_tonne"
    added = re.fullmatch(r"(dr_events|jobs)\[(\d+)\](?:\.(\w+))?(.*)", path)
    if added and int(added[2]) >= firsts[added[1]]:
        section, index, key, rest = added[1], int(added[2]), added[3], added[4]
        name = "" if key is None else "." + _FIELD_NAMES[section].get(key, key)
        return f"overrides.{section}[{index - firsts[section]}]{name}{rest}"
    site = re.fullmatch(r"sites\[(\d+)\]\.grid_limit_kw", path)
    if site:
        site_id = doc["sites"][int(site[1])]["id"]
        if site_id in overrides.grid_limit_kw_by_site:
            return f"overrides.grid_limit_kw_by_site[{site_id!r}]"
    return "overrides"


class WhatIfRunner:
    """Plans what-ifs in the API's solver child, queued one at a time, within deadlines and
    the size and time caps of `limits`."""

    def __init__(
        self,
        solver: ApiSolver,
        limits: ApiSettings,
        time_limit_s: float = 20.0,
        mip_gap_frac: float = 0.005,
    ) -> None:
        self.limits = limits
        self.time_limit_s = min(time_limit_s, limits.what_if_max_time_limit_s)
        self.mip_gap_frac = mip_gap_frac
        self._solver = solver

    def check_scenario(self, scenario: Scenario) -> None:
        """InvalidFieldError naming the part of a `scenario_json` above its cap."""
        limits = self.limits
        for path, count, cap in (
            ("scenario_json.vehicles", len(scenario.vehicles), limits.what_if_max_vehicles),
            ("scenario_json.horizon.slots", scenario.horizon.slots, limits.what_if_max_slots),
            ("scenario_json.jobs", len(scenario.jobs), limits.what_if_max_jobs),
        ):
            if count > cap:
                raise InvalidFieldError(path, f"{count} is over the cap of {cap}")

    def check_overrides(self, overrides: Overrides) -> None:
        """InvalidFieldError when the overrides add more jobs than the cap."""
        cap = self.limits.what_if_max_jobs
        if len(overrides.jobs) > cap:
            raise InvalidFieldError(
                "overrides.jobs", f"{len(overrides.jobs)} is over the cap of {cap}"
            )

    def plan(
        self, scenario: Scenario, strategy: str, time_limit_s: float, time_left_s: float | None
    ) -> Plan:
        """Plan `scenario`; `time_limit_s` 0 is the runner's, `time_left_s` the call's [s].

        InvalidFieldError for a limit over the cap; BusyError when the solver's queue is
        full; OutOfTimeError when the deadline leaves too little time, waiting included."""
        cap = self.limits.what_if_max_time_limit_s
        if time_limit_s > cap:
            raise InvalidFieldError("time_limit_s", f"{time_limit_s:g} s is over the {cap:g} s cap")
        requested = time_limit_s or self.time_limit_s
        if time_left_s is not None and time_left_s * DEADLINE_SHARE < MIN_SOLVE_S:
            raise OutOfTimeError(f"{time_left_s:.3f} s left: too little to plan")
        with self._solver.turn(time_left_s) as turn:
            left_s = turn.time_left_s()
            limit = requested if left_s is None else min(requested, left_s * DEADLINE_SHARE)
            if limit < MIN_SOLVE_S:
                raise OutOfTimeError(f"{left_s:.3f} s left: too little to plan")
            args = (scenario, strategy, limit, self.mip_gap_frac)
            try:
                return turn.call(plan_scenario, args, limit + BUILD_ALLOWANCE_S)
            except SolveError as exc:
                if limit < requested:
                    raise OutOfTimeError(
                        f"no plan found in the {limit:.2f} s the deadline left"
                    ) from exc
                raise
