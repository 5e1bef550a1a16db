"""SubmitDemandResponse: a utility's cap through the API, decided by the optimizer."""

from __future__ import annotations

import grpc

from idlefleet.api.auth import Role
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from tests.idlefleet.conftest import Tokens, rpc_error, stamp


def cap(event_id: str, max_import_kw: float, hours: float = 8.0) -> pb.DrEventSpec:
    return pb.DrEventSpec(
        event_id=event_id,
        site_id="berlin-depot",
        start=stamp(0),
        end=stamp(hours),
        max_import_kw=max_import_kw,
    )


def test_an_honourable_cap_is_accepted_made_binding_and_withdrawn(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    operator = tokens.metadata(Role.OPERATOR)
    decision = stub.SubmitDemandResponse(
        pb.SubmitDemandResponseRequest(event=cap("generous", 1000.0)), metadata=operator
    )
    assert decision.honoured and decision.event_id == "generous" and decision.plan_s > 0
    assert "generous" in backend.state.dr_events
    withdrawn = stub.SubmitDemandResponse(
        pb.SubmitDemandResponseRequest(event=cap("generous", 1000.0), cancel=True),
        metadata=operator,
    )
    assert withdrawn.honoured and "generous" not in backend.state.dr_events


def test_a_cap_that_would_strand_owners_is_refused_with_the_cars_named(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    decision = stub.SubmitDemandResponse(
        pb.SubmitDemandResponseRequest(event=cap("blackout", 0.0)),
        metadata=tokens.metadata(Role.OPERATOR),
    )
    assert not decision.honoured and "car-" in decision.reason
    assert "blackout" not in backend.state.dr_events


def test_bad_requests_and_roles_get_the_right_codes(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens
) -> None:
    viewer = stub.SubmitDemandResponse
    error = rpc_error(
        lambda: viewer(
            pb.SubmitDemandResponseRequest(event=cap("x", 10.0)),
            metadata=tokens.metadata(Role.VIEWER),
        )
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    no_end = pb.DrEventSpec(event_id="x", site_id="berlin-depot", start=stamp(0), max_import_kw=1)
    error = rpc_error(
        lambda: stub.SubmitDemandResponse(
            pb.SubmitDemandResponseRequest(event=no_end), metadata=tokens.metadata(Role.OPERATOR)
        )
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "event.end" in error.details()
    error = rpc_error(
        lambda: stub.SubmitDemandResponse(
            pb.SubmitDemandResponseRequest(event=cap("neg", -5.0)),
            metadata=tokens.metadata(Role.OPERATOR),
        )
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
