"""The Grid page over a local backend: DR caps with their decisions and reasons (one sent
through the API's desk, one refused, one a utility's), flexibility per scope as the plan's
views hold it, and what-ifs planned in the API's solver child against the current plan."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from idlefleet.api.auth import REQUIRED_ROLES
from idlefleet.queries.demand_response import DemandResponseDesk
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.solver import ApiSolver
from idlefleet.queries.views import Scope
from idlefleet.queries.what_if import WhatIfRunner
from idlefleet.settings import ApiSettings
from idlefleet.sim.clock import SteppedClock
from idlefleet.web.grid_page import UNRECORDED_REASON, grid_page
from idlefleet.web.grid_what_if import WHAT_IF_ROLE, FormError, WhatIfForm, run_what_if
from streams.catalog import T0
from tests.idlefleet.conftest import SETTINGS, SITES, fill
from tests.streams.factories import dr_event

REGION_BY_SITE = {site.site_id: site.region for site in SITES}


@pytest.fixture
def desk(backend: LocalBackend, api_solver: ApiSolver) -> DemandResponseDesk:
    return DemandResponseDesk(backend, api_solver, deadline_s=60.0)


@pytest.fixture
def runner(api_solver: ApiSolver) -> WhatIfRunner:
    return WhatIfRunner(api_solver, ApiSettings(), SETTINGS.solver_time_limit_s)


def test_dr_events_carry_their_decision_reason_and_standing(
    backend: LocalBackend, desk: DemandResponseDesk, clock: SteppedClock
) -> None:
    generous = dr_event("generous", max_import_kw=1000.0, end=T0 + timedelta(hours=1))
    assert desk.submit(generous, "utility", None).honour
    blackout = dr_event("blackout", max_import_kw=0.0, end=T0 + timedelta(hours=4))
    refused = desk.submit(blackout, "utility", None)
    assert not refused.honour
    later = dr_event(
        "vtn-later",
        start=T0 + timedelta(hours=2),
        end=T0 + timedelta(hours=3),
        site_id=None,
        region="GB",
    )
    backend.apply_dr_event(later)  # a utility's cap, as the OpenADR VEN publishes one

    rows = {row.event_id: row for row in grid_page(backend).dr_events}
    assert set(rows) == {"generous", "blackout", "vtn-later"}
    accepted = rows["generous"]
    assert accepted.decided == "accepted" and accepted.standing == "in force now"
    assert accepted.reason.startswith("adds no shortfall") and accepted.requested_by == "utility"
    assert accepted.target == "site berlin-depot" and accepted.max_import_kw == 1000.0
    assert rows["blackout"].decided == "refused" and rows["blackout"].reason == refused.reason
    assert rows["blackout"].standing == "not in force" and "car-" in rows["blackout"].reason
    vtn = rows["vtn-later"]
    assert vtn.target == "region GB" and vtn.reason == UNRECORDED_REASON[True]
    assert vtn.standing == "in force from its start"
    assert grid_page(backend).dr_events[0].event_id == "vtn-later", "the latest start first"

    clock.now = T0 + timedelta(hours=1)
    assert {row.event_id: row for row in grid_page(backend).dr_events}["generous"].standing == (
        "ended"
    )
    assert desk.submit(generous.model_copy(update={"cancelled": True}), "utility", None).honour
    withdrawn = {row.event_id: row for row in grid_page(backend).dr_events}["generous"]
    assert withdrawn.decided == "withdrawn" and withdrawn.standing == "not in force"


def test_flexibility_per_scope_is_the_plans(backend: LocalBackend) -> None:
    views = backend.board.views
    assert views is not None
    page = grid_page(backend)
    assert page.scope == "fleet" and page.scope_error is None
    assert [c.value for c in page.scopes] == [
        "fleet",
        "site:berlin-depot",
        "site:london-depot",
        "region:DE",
        "region:GB",
    ]
    for value, scope in (
        ("fleet", Scope("fleet")),
        ("site:london-depot", Scope("site", "london-depot")),
        ("region:DE", Scope("region", "DE")),
    ):
        flexibility = grid_page(backend, value).flexibility
        assert flexibility is not None
        series = views.flexibility[scope]
        assert flexibility.add_power_kw == series.add_power_kw
        assert flexibility.shed_power_kw == series.shed_power_kw
        chart = flexibility.chart
        assert [s.kind for s in chart.series] == ["area", "limit", "step", "step"]
        assert chart.series[1].values == series.import_cap_kw
        assert chart.slot_starts[0] == views.snapshot.scenario.horizon.start


def test_a_bad_scope_names_the_parameter(backend: LocalBackend) -> None:
    unknown = grid_page(backend, "site:nowhere")
    assert unknown.flexibility is None and unknown.scope_error is not None
    assert unknown.scope_error.status == 404 and str(unknown.scope_error).startswith("scope: ")
    malformed = grid_page(backend, "planet:earth").scope_error
    assert malformed is not None and malformed.status == 400


def test_before_the_first_plan_no_flexibility(clock: SteppedClock) -> None:
    fresh = LocalBackend(SITES, SETTINGS, clock)
    fill(fresh.state)
    page = grid_page(fresh, "site:berlin-depot")
    assert page.flexibility is None and page.scope_error is None and page.plan_start is None


def test_the_what_if_role_is_the_apis() -> None:
    assert REQUIRED_ROLES["/idlefleet.v1.FleetPlanner/WhatIf"] is WHAT_IF_ROLE


def test_a_tight_cap_costs_shortfall_and_changes_nothing(
    backend: LocalBackend, runner: WhatIfRunner
) -> None:
    views = backend.board.views
    assert views is not None and views.plan.kpis is not None
    form = WhatIfForm.default(T0, SETTINGS.slot_minutes, "site:berlin-depot")
    assert form.start == T0.strftime("%Y-%m-%dT%H:%M")
    tight = WhatIfForm("cap", "site:berlin-depot", form.start, _plus_hours(form.start, 3), "0")
    result = run_what_if(tight, backend, runner, REGION_BY_SITE)
    effects = {effect.label: effect for effect in result.effects}
    assert effects["Carbon emitted"].current == views.plan.kpis.emissions_kg
    assert effects["Owners left short at departure"].change > 0
    assert "0 kW on site berlin-depot" in result.description
    assert backend.board.views is views and backend.dr_events() == []


def test_extra_jobs_add_work(backend: LocalBackend, runner: WhatIfRunner) -> None:
    start = WhatIfForm.default(T0, SETTINGS.slot_minutes, "").start
    jobs = WhatIfForm("jobs", "", start, _plus_hours(start, 2), "", "6", "1.0")
    result = run_what_if(jobs, backend, runner, REGION_BY_SITE)
    work = {effect.label: effect for effect in result.effects}["Work planned"]
    assert work.change > 0 and work.change_cell.startswith("+")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cap_kw": "lots"}, "cap_kw"),
        ({"cap_kw": "-3"}, "cap_kw"),
        ({"end": "2020-01-01T00:00"}, "end"),
        ({"start": "noon"}, "start"),
        ({"target": "site:nowhere"}, "target"),
        ({"target": ""}, "target"),
        ({"change": "meteor"}, "change"),
        ({"change": "jobs", "shards": "0"}, "shards"),
        ({"change": "jobs", "target": "region:DE"}, "target"),
        ({"change": "jobs", "value_per_shard": "nan"}, "value_per_shard"),
    ],
)
def test_bad_input_names_the_field(
    backend: LocalBackend, runner: WhatIfRunner, changes: dict[str, str], field: str
) -> None:
    start = WhatIfForm.default(T0, SETTINGS.slot_minutes, "").start
    fields = {
        "change": "cap",
        "target": "site:berlin-depot",
        "start": start,
        "end": _plus_hours(start, 1),
        "cap_kw": "5",
        **changes,
    }
    with pytest.raises(FormError) as error:
        run_what_if(WhatIfForm(**fields), backend, runner, REGION_BY_SITE)
    assert error.value.field == field


def _plus_hours(form_time: str, hours: float) -> str:
    moment = datetime.fromisoformat(form_time) + timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M")
