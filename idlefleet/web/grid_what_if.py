"""The Grid page's what-if: a cap on a site or a region, or extra jobs, planned on the current
scenario in the API's way (`idlefleet.queries.what_if`) and set against the current plan.

A what-if changes nothing in the service. Bad input raises `FormError` naming the form field.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from idlefleet.queries.errors import ApiError, InvalidFieldError
from idlefleet.queries.fleet_status import slot_floor
from idlefleet.queries.ports import FleetBackend
from idlefleet.queries.what_if import Overrides, WhatIfRunner, overridden_scenario
from idlefleet.tokens import Role
from optimizer import DrEvent, Plan, SolveError
from optimizer import Job as ScenarioJob

log = logging.getLogger(__name__)

#: The least role that may run a what-if: the gRPC WhatIf method's
#: (`idlefleet.api.auth.REQUIRED_ROLES`; a test keeps the two equal).
WHAT_IF_ROLE = Role.OPERATOR
#: Longest a console what-if may take, waiting for the solver included [s].
WHAT_IF_DEADLINE_S = 60.0
#: Longest value a what-if field may post [characters].
MAX_FIELD_CHARS = 100
#: Most extra shards a console what-if may add [count].
MAX_SHARDS = 100_000
#: The ids the hypothetical cap and job carry in the planned scenario.
WHAT_IF_ID = "console-what-if"
#: The form's fields and what a problem with each request field is reported on.
_FIELD_OF_PATH = {
    "max_import_kw": "cap_kw",
    "start": "start",
    "end": "end",
    "site_id": "target",
    "region": "target",
    "shards": "shards",
    "value_per_shard": "value_per_shard",
    "release": "start",
    "deadline": "end",
    "site_ids": "target",
}


class FormError(ValueError):
    """A form field (`field`; `change` for the what-if as a whole) and its problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class WhatIfForm:
    """The posted fields as typed: `change` is `cap` or `jobs`; `target` is `site:ID` or
    `region:ID` (for jobs, a site or empty: anywhere); `start` and `end` are UTC
    `YYYY-MM-DDTHH:MM`; `cap_kw` [kW], `shards` [count], `value_per_shard` [currency]."""

    change: str = "cap"
    target: str = ""
    start: str = ""
    end: str = ""
    cap_kw: str = ""
    shards: str = "4"
    value_per_shard: str = "0.5"

    @classmethod
    def default(cls, now: datetime, slot_minutes: int, target: str) -> WhatIfForm:
        """A cap on `target` from the current slot for an hour."""
        start = slot_floor(now, slot_minutes)
        end = start + timedelta(hours=1)
        return cls(target=target, start=_form_time(start), end=_form_time(end))


@dataclass(frozen=True)
class Effect:
    """One figure of the current plan and of the what-if's, in `unit`."""

    label: str
    unit: str
    current: float
    what_if: float
    decimals: int = 1

    @property
    def change(self) -> float:
        return self.what_if - self.current

    def cell(self, value: float) -> str:
        """A figure as the table prints it."""
        return f"{value:.{self.decimals}f}"

    @property
    def change_cell(self) -> str:
        """The change, signed (`±0` when it rounds to none)."""
        shown = f"{self.change:+.{self.decimals}f}"
        return "±0" if float(shown) == 0 else shown


@dataclass(frozen=True)
class WhatIfResult:
    """What was tried, the what-if's plan status and why it leaves cars short (if it does),
    the effects on carbon, shortfall and work, and both plans' starts [UTC]."""

    description: str
    status: str
    shortfall_reason: str | None
    effects: tuple[Effect, ...]
    plan_start: datetime
    what_if_start: datetime


def run_what_if(
    form: WhatIfForm,
    backend: FleetBackend,
    runner: WhatIfRunner,
    region_by_site: Mapping[str, str],
) -> WhatIfResult:
    """Plan the current scenario with the form's change; FormError naming the field, or
    `change` when the what-if cannot be planned now."""
    views = backend.board.views
    if views is None:
        raise FormError("change", "there is no current plan to compare with yet")
    overrides, description = overrides_of(form, region_by_site)
    try:
        runner.check_overrides(overrides)
        scenario = overridden_scenario(backend.current_scenario(), overrides)
        plan = runner.plan(scenario, "milp", 0.0, WHAT_IF_DEADLINE_S)
    except InvalidFieldError as exc:
        path, _, problem = str(exc).partition(": ")
        raise FormError(_FIELD_OF_PATH.get(path.rpartition(".")[2], "change"), problem) from exc
    except (ApiError, SolveError) as exc:
        raise FormError("change", str(exc)) from exc
    except RuntimeError as exc:  # the child's trace: for the log, not the page
        log.exception("web console: a what-if failed in the solver child")
        raise FormError("change", "the solver failed on this what-if (see the log)") from exc
    return WhatIfResult(
        description=description,
        status=plan.status.value,
        shortfall_reason=plan.reason,
        effects=effects(views.plan, plan),
        plan_start=views.snapshot.scenario.horizon.start,
        what_if_start=scenario.horizon.start,
    )


def effects(current: Plan, what_if: Plan) -> tuple[Effect, ...]:
    """Carbon [kg], shortfall [kWh] and work [shard executions] of both plans (no figures for
    a plan without a schedule: it has none)."""
    if current.kpis is None or what_if.kpis is None:
        return ()
    now, then = current.kpis, what_if.kpis
    return (
        Effect("Carbon emitted", "kg CO₂", now.emissions_kg, then.emissions_kg, 2),
        Effect("Owners left short at departure", "kWh", now.shortfall_kwh, then.shortfall_kwh, 2),
        Effect("Work planned", "shard runs", _executions(current), _executions(what_if), 0),
        Effect("Work left undone", "shard runs", now.unmet_shards, then.unmet_shards, 0),
        Effect("Grid energy", "kWh", now.grid_energy_kwh, then.grid_energy_kwh, 1),
    )


def _executions(plan: Plan) -> int:
    return sum(outcome.executions for outcome in plan.jobs.values())


def overrides_of(form: WhatIfForm, region_by_site: Mapping[str, str]) -> tuple[Overrides, str]:
    """The form as scenario overrides, and a sentence saying what they try."""
    start, end = _time(form.start, "start"), _time(form.end, "end")
    if end <= start:
        raise FormError("end", "must be after the start")
    window = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    kind, _, identifier = form.target.partition(":")
    if kind == "site" and identifier not in region_by_site:
        raise FormError("target", f"no site is called {identifier[:60]!r}")
    if kind == "region" and identifier not in set(region_by_site.values()):
        raise FormError("target", f"no region is called {identifier[:60]!r}")
    if form.change == "cap":
        if kind not in ("site", "region"):
            raise FormError("target", "pick the site or region to cap")
        cap_kw = _number(form.cap_kw, "cap_kw")
        event = DrEvent(
            WHAT_IF_ID,
            start,
            end,
            cap_kw,
            site=identifier if kind == "site" else None,
            region=identifier if kind == "region" else None,
        )
        described = f"a cap of {cap_kw:g} kW on {kind} {identifier}, {window}"
        return Overrides(dr_events=(event,)), described
    if form.change == "jobs":
        if form.target and kind != "site":
            raise FormError("target", "extra jobs run at one site or anywhere")
        shards = _count(form.shards, "shards")
        value = _number(form.value_per_shard, "value_per_shard")
        sites = (identifier,) if kind == "site" else None
        job = ScenarioJob(WHAT_IF_ID, shards, value, release=start, deadline=end, sites=sites)
        where = f"at site {identifier}" if sites else "anywhere"
        described = f"{shards} extra shards worth {value:g} each, {where}, {window}"
        return Overrides(jobs=(job,)), described
    raise FormError("change", "pick a cap or extra jobs")


def _form_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _time(text: str, field: str) -> datetime:
    """A `datetime-local` value read as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise FormError(field, "is not a date and time (YYYY-MM-DD HH:MM, UTC)") from exc
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    return moment.replace(tzinfo=UTC)


def _number(text: str, field: str) -> float:
    try:
        value = float(text.strip())
    except ValueError as exc:
        raise FormError(field, "is not a number") from exc
    if not math.isfinite(value) or value < 0:
        raise FormError(field, "must be a number of 0 or more")
    return value


def _count(text: str, field: str) -> int:
    try:
        value = int(text.strip())
    except ValueError as exc:
        raise FormError(field, "is not a whole number") from exc
    if not 1 <= value <= MAX_SHARDS:
        raise FormError(field, f"must be from 1 to {MAX_SHARDS}")
    return value
