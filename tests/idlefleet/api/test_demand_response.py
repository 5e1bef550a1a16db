"""SubmitDemandResponse: a utility's cap through the API, decided by the optimizer, and
changed or withdrawn only by whoever made it (or an admin)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from idlefleet.api import serde
from idlefleet.api.auth import Role, TokenTable
from idlefleet.api.server import create_server
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.solver import ApiSolver
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


UTILITY, OPERATOR, ADMIN = ("utility-" + "u" * 16, "ops-" + "o" * 16, "admin-" + "a" * 16)
NAMED_TOKENS = TokenTable.parse(
    f"{UTILITY} operator utility\n{OPERATOR} operator ops\n{ADMIN} admin\n"
)


def _as(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def named_stub(backend: LocalBackend, api_solver: ApiSolver) -> Iterator[pb_grpc.FleetPlannerStub]:
    """A stub to a server whose tokens speak for a utility, an operator and an admin."""
    server, port = create_server(backend, 0, NAMED_TOKENS, solver=api_solver)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield pb_grpc.FleetPlannerStub(channel)
    finally:
        server.stop(grace_s=0)


def test_only_the_creator_of_a_cap_may_change_or_cancel_it(
    named_stub: pb_grpc.FleetPlannerStub, backend: LocalBackend
) -> None:
    submit = named_stub.SubmitDemandResponse
    evening = pb.SubmitDemandResponseRequest(event=cap("evening", 1000.0))
    assert submit(evening, metadata=_as(UTILITY)).honoured
    for request in (
        pb.SubmitDemandResponseRequest(event=cap("evening", 1000.0), cancel=True),
        pb.SubmitDemandResponseRequest(event=cap("evening", 2000.0)),
    ):
        error = rpc_error(lambda: submit(request, metadata=_as(OPERATOR)))  # noqa: B023
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "'evening'" in error.details()
    assert backend.state.dr_events["evening"].max_import_kw == 1000.0
    cancel = pb.SubmitDemandResponseRequest(event=cap("evening", 1000.0), cancel=True)
    assert submit(cancel, metadata=_as(UTILITY)).honoured
    assert "evening" not in backend.state.dr_events
    # Withdrawn, the id is free again: now the operator's cap.
    assert submit(evening, metadata=_as(OPERATOR)).honoured
    assert rpc_error(lambda: submit(cancel, metadata=_as(UTILITY))).code() is (
        grpc.StatusCode.PERMISSION_DENIED
    )


def test_a_cap_no_api_caller_made_is_only_an_admins_to_cancel(
    named_stub: pb_grpc.FleetPlannerStub, backend: LocalBackend
) -> None:
    """An OpenADR event reaches the fleet without the API: an operator may not lift it."""
    request = pb.SubmitDemandResponseRequest(event=cap("openadr", 1000.0))
    backend.apply_dr_event(serde.dr_event_of(request))
    cancel = pb.SubmitDemandResponseRequest(event=cap("openadr", 1000.0), cancel=True)
    error = rpc_error(lambda: named_stub.SubmitDemandResponse(cancel, metadata=_as(OPERATOR)))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED and "'openadr'" in error.details()
    assert "openadr" in backend.state.dr_events
    assert named_stub.SubmitDemandResponse(cancel, metadata=_as(ADMIN)).honoured
    assert "openadr" not in backend.state.dr_events


def test_a_refused_cap_leaves_its_id_free(
    named_stub: pb_grpc.FleetPlannerStub, backend: LocalBackend
) -> None:
    blackout = pb.SubmitDemandResponseRequest(event=cap("blackout", 0.0))
    assert not named_stub.SubmitDemandResponse(blackout, metadata=_as(UTILITY)).honoured
    generous = pb.SubmitDemandResponseRequest(event=cap("blackout", 1000.0))
    assert named_stub.SubmitDemandResponse(generous, metadata=_as(OPERATOR)).honoured
