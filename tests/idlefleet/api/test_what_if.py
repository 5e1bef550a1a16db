"""WhatIf: plans a scenario, or the current one with overrides, and commits nothing."""

from __future__ import annotations

import json

import grpc
import pytest

from idlefleet.api.auth import Role
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.settings import ApiSettings
from optimizer import load_scenario
from tests.idlefleet.conftest import ServerFactory, Tokens, rpc_error, stamp
from tests.optimizer.factories import car, tiny


def test_what_if_plans_the_current_scenario_with_overrides_without_committing(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    operator = tokens.metadata(Role.OPERATOR)
    current = stub.WhatIf(pb.WhatIfRequest(), metadata=operator)
    views = backend.board.views
    assert views is not None
    assert current.plan.objective == pytest.approx(views.plan.objective, rel=1e-4)
    assert current.plan.plan_id == "" and current.plan.revision == 0
    overrides = pb.ScenarioOverrides(
        remove_vehicle_ids=["car-b"],
        jobs=[
            pb.WhatIfJob(job_id="extra", shards=6, value_per_shard=1.0, site_ids=["berlin-depot"])
        ],
    )
    changed = stub.WhatIf(
        pb.WhatIfRequest(overrides=overrides, strategy=pb.STRATEGY_GREEDY), metadata=operator
    )
    assert changed.plan.strategy == pb.STRATEGY_GREEDY and changed.plan.vehicles == 3
    scenario = load_scenario(json.loads(changed.scenario_json))
    assert [j.id for j in scenario.jobs] == ["embed-1", "extra"]
    assert backend.board.views is views  # nothing committed


def test_a_tighter_grid_limit_costs_carbon(stub: pb_grpc.FleetPlannerStub, tokens: Tokens) -> None:
    operator = tokens.metadata(Role.OPERATOR)
    base = stub.WhatIf(pb.WhatIfRequest(), metadata=operator).plan
    overrides = pb.ScenarioOverrides(grid_limit_kw_by_site={"london-depot": 11.0})
    tight = stub.WhatIf(pb.WhatIfRequest(overrides=overrides), metadata=operator).plan
    assert tight.objective >= base.objective - 1e-6


def test_what_if_plans_a_whole_scenario(stub: pb_grpc.FleetPlannerStub, tokens: Tokens) -> None:
    doc = tiny([100.0, 300.0], vehicles=[car(soc_kwh=20.0, target_kwh=30.0, departure=2)])
    request = pb.WhatIfRequest(scenario_json=json.dumps(doc), strategy=pb.STRATEGY_MILP)
    response = stub.WhatIf(request, metadata=tokens.metadata(Role.ADMIN))
    assert response.plan.status == pb.PLAN_STATUS_OPTIMAL and response.plan.slots == 2
    assert response.plan.kpis.grid_energy_kwh == pytest.approx(10.0)


BAD_DR = pb.DrEventSpec(
    event_id="dr", site_id="berlin-depot", start=stamp(0), end=stamp(1), max_import_kw=-5.0
)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.WhatIfRequest(scenario_json="{"), "scenario_json: not valid JSON"),
        (pb.WhatIfRequest(scenario_json="/etc/passwd"), "scenario_json: not valid JSON"),
        (pb.WhatIfRequest(scenario_json="[]"), "scenario_json: must be a JSON object"),
        (
            pb.WhatIfRequest(scenario_json=json.dumps(tiny([1.0], vehicles=[car(soc_kwh=99.0)]))),
            "scenario_json.vehicles[0].soc_kwh",
        ),
        (pb.WhatIfRequest(time_limit_s=-1), "time_limit_s"),
        (pb.WhatIfRequest(strategy=99), "strategy"),  # type: ignore[arg-type]
        (
            pb.WhatIfRequest(overrides=pb.ScenarioOverrides(carbon_price_per_tonne=-5)),
            "overrides.carbon_price_per_tonne",
        ),
        (
            pb.WhatIfRequest(overrides=pb.ScenarioOverrides(grid_limit_kw_by_site={"x": 1.0})),
            "overrides.grid_limit_kw_by_site['x']",
        ),
        (
            pb.WhatIfRequest(
                overrides=pb.ScenarioOverrides(grid_limit_kw_by_site={"berlin-depot": -1})
            ),
            "overrides.grid_limit_kw_by_site['berlin-depot']",
        ),
        (
            pb.WhatIfRequest(overrides=pb.ScenarioOverrides(remove_vehicle_ids=["car-a", "zz"])),
            "overrides.remove_vehicle_ids[1]",
        ),
        (
            pb.WhatIfRequest(overrides=pb.ScenarioOverrides(dr_events=[BAD_DR])),
            "overrides.dr_events[0].max_import_kw",
        ),
        (
            pb.WhatIfRequest(
                overrides=pb.ScenarioOverrides(
                    dr_events=[
                        pb.DrEventSpec(
                            event_id="dr",
                            region="FR",
                            start=stamp(0),
                            end=stamp(1),
                            max_import_kw=1,
                        )
                    ]
                )
            ),
            "overrides.dr_events[0].region",
        ),
        (
            pb.WhatIfRequest(
                overrides=pb.ScenarioOverrides(
                    dr_events=[pb.DrEventSpec(event_id="dr", region="DE", max_import_kw=1.0)]
                )
            ),
            "overrides.dr_events[0].start",
        ),
        (
            pb.WhatIfRequest(
                overrides=pb.ScenarioOverrides(jobs=[pb.WhatIfJob(job_id="j", value_per_shard=-1)])
            ),
            "overrides.jobs[0].value_per_shard",
        ),
        (
            pb.WhatIfRequest(
                overrides=pb.ScenarioOverrides(jobs=[pb.WhatIfJob(job_id="embed-1", shards=1)])
            ),
            "overrides.jobs[0].job_id",
        ),
    ],
)
def test_bad_what_ifs_name_the_field(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, request_: pb.WhatIfRequest, field: str
) -> None:
    error = rpc_error(lambda: stub.WhatIf(request_, metadata=tokens.metadata(Role.OPERATOR)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error.details().startswith(field), error.details()


def test_a_what_if_no_car_can_charge_in_names_who_is_left_short_and_why(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens
) -> None:
    blackout = pb.DrEventSpec(
        event_id="blackout", region="GB", start=stamp(0), end=stamp(4), max_import_kw=0.0
    )
    request = pb.WhatIfRequest(overrides=pb.ScenarioOverrides(dr_events=[blackout]))
    plan = stub.WhatIf(request, metadata=tokens.metadata(Role.OPERATOR)).plan
    assert plan.status == pb.PLAN_STATUS_OPTIMAL
    short = {s.vehicle_id: s for s in plan.shortfalls}
    assert "car-c" in short and short["car-c"].shortfall_kwh > 0
    assert "DR cap blackout" in short["car-c"].limited_by
    assert plan.kpis.shortfall_kwh == pytest.approx(sum(s.shortfall_kwh for s in short.values()))
    assert "car-c" in plan.shortfall_reason


def test_what_if_respects_the_deadline(stub: pb_grpc.FleetPlannerStub, tokens: Tokens) -> None:
    request = pb.WhatIfRequest()
    error = rpc_error(
        lambda: stub.WhatIf(request, metadata=tokens.metadata(Role.OPERATOR), timeout=0.05)
    )
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED


SMALL_CAPS = ApiSettings(
    what_if_max_time_limit_s=5.0, what_if_max_vehicles=1, what_if_max_slots=3, what_if_max_jobs=1
)
TWO_JOBS = [pb.WhatIfJob(job_id=f"extra-{i}", shards=1, value_per_shard=1.0) for i in range(2)]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.WhatIfRequest(time_limit_s=5.5), "time_limit_s: 5.5 s is over the 5 s cap"),
        (
            pb.WhatIfRequest(scenario_json=json.dumps(tiny([1.0], vehicles=[car(), car("b")]))),
            "scenario_json.vehicles: 2 is over the cap of 1",
        ),
        (
            pb.WhatIfRequest(scenario_json=json.dumps(tiny([1.0] * 4))),
            "scenario_json.horizon.slots: 4 is over the cap of 3",
        ),
        (
            pb.WhatIfRequest(overrides=pb.ScenarioOverrides(jobs=TWO_JOBS)),
            "overrides.jobs: 2 is over the cap of 1",
        ),
    ],
)
def test_a_what_if_over_a_cap_names_the_field(
    serve: ServerFactory,
    backend: LocalBackend,
    tokens: Tokens,
    request_: pb.WhatIfRequest,
    field: str,
) -> None:
    _, port = serve(backend, settings=SMALL_CAPS)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.FleetPlannerStub(channel)
        error = rpc_error(lambda: stub.WhatIf(request_, metadata=tokens.metadata(Role.OPERATOR)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error.details() == field


def test_the_default_time_limit_cap_is_30_s(stub: pb_grpc.FleetPlannerStub, tokens: Tokens) -> None:
    request = pb.WhatIfRequest(time_limit_s=3600)
    error = rpc_error(lambda: stub.WhatIf(request, metadata=tokens.metadata(Role.OPERATOR)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "time_limit_s: 3600 s is over the 30 s cap"
