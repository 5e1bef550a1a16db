"""What-ifs and DR decisions queue for one solver child: never two at once, never in the API's
process, and RESOURCE_EXHAUSTED once the queue is full."""

from __future__ import annotations

import time

import grpc

from idlefleet.api.auth import Role
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.solver import ApiSolver
from tests.idlefleet.api.test_demand_response import cap
from tests.idlefleet.conftest import ServerFactory, Tokens, rpc_error

QUEUED_S = 10.0


def test_solves_queue_for_the_one_solver_and_a_full_queue_is_refused(
    serve: ServerFactory, backend: LocalBackend, tokens: Tokens
) -> None:
    solver = ApiSolver(max_waiting=1)
    operator = tokens.metadata(Role.OPERATOR)
    try:
        _, port = serve(backend, solver=solver)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.FleetPlannerStub(channel)
            with solver.turn(None):  # a solve in progress
                queued = stub.WhatIf.future(pb.WhatIfRequest(), metadata=operator, timeout=120)
                deadline = time.monotonic() + QUEUED_S
                while solver.callers < 2:  # until the what-if waits in the one place
                    assert time.monotonic() < deadline, "the what-if never queued"
                    time.sleep(0.01)
                decide = pb.SubmitDemandResponseRequest(event=cap("queued", 1000.0))
                error = rpc_error(lambda: stub.SubmitDemandResponse(decide, metadata=operator))
                assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "1 solves are waiting already" in error.details()
                refused = rpc_error(lambda: stub.WhatIf(pb.WhatIfRequest(), metadata=operator))
                assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                time.sleep(0.2)
                assert not queued.done(), "a what-if ran while another solve held the solver"
            assert queued.result().plan.status == pb.PLAN_STATUS_OPTIMAL
            decision = stub.SubmitDemandResponse(decide, metadata=operator)
            assert decision.honoured and "queued" in backend.state.dr_events
    finally:
        solver.close()
