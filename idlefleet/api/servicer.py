"""The FleetPlanner service: thin methods from request to backend to response.

Conversions live in `serde`, domain logic in the backend and views, status codes in `status`.
Method names are the proto's RPC names.
"""

# ruff: noqa: N802

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from idlefleet.api import serde
from idlefleet.api.auth import Principal, Role, TokenTable
from idlefleet.api.status import status_of
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.demand_response import DemandResponseDesk
from idlefleet.queries.errors import NotAllowedError, PreconditionError
from idlefleet.queries.ports import FleetBackend
from idlefleet.queries.registry_desk import RegistryDesk
from idlefleet.queries.views import PlanViews
from idlefleet.queries.what_if import WhatIfRunner, overridden_scenario, scenario_from_json

log = logging.getLogger(__name__)

#: How often a plan watcher checks that its client is still there [s].
WATCH_POLL_S = 0.5


@contextmanager
def reported(context: grpc.ServicerContext) -> Iterator[None]:
    """End the call with the status `status_of` gives any error raised in the block."""
    try:
        yield
    except Exception as exc:
        code, message = status_of(exc)
        if code is grpc.StatusCode.INTERNAL:
            log.exception("internal error")
        context.abort(code, message)


class FleetPlannerServicer(pb_grpc.FleetPlannerServicer):
    def __init__(
        self,
        backend: FleetBackend,
        tokens: TokenTable,
        what_if: WhatIfRunner,
        demand_response: DemandResponseDesk,
        registry: RegistryDesk,
    ) -> None:
        self._backend = backend
        self._tokens = tokens
        self._what_if = what_if
        self._demand_response = demand_response
        self._registry = registry

    def _views(self) -> PlanViews:
        views = self._backend.board.views
        if views is None:
            raise PreconditionError("no plan yet")
        return views

    def SubmitJob(
        self, request: pb.SubmitJobRequest, context: grpc.ServicerContext
    ) -> pb.SubmitJobResponse:
        with reported(context):
            job = serde.job_from_proto(request.job, submitted_at=self._backend.now())
            record, created = self._backend.submit_job(job)
            return pb.SubmitJobResponse(
                job=serde.job_status(record, self._backend.board.views), created=created
            )

    def GetJob(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> pb.JobStatus:
        with reported(context):
            record = self._backend.job(serde.job_id_of(request))
            return serde.job_status(record, self._backend.board.views)

    def GetJobOutputs(
        self, request: pb.GetJobOutputsRequest, context: grpc.ServicerContext
    ) -> pb.JobOutputs:
        with reported(context):
            record, results = self._backend.job_outputs(serde.job_id_of(request))
            return serde.job_outputs(record, results, self._backend.board.views)

    def CancelJob(
        self, request: pb.CancelJobRequest, context: grpc.ServicerContext
    ) -> pb.JobStatus:
        with reported(context):
            record = self._backend.cancel_job(serde.job_id_of(request))
            return serde.job_status(record, self._backend.board.views)

    def ListJobs(
        self, request: pb.ListJobsRequest, context: grpc.ServicerContext
    ) -> pb.ListJobsResponse:
        with reported(context):
            size, after = serde.page_of(request)
            records = self._backend.jobs()
            first = bisect.bisect_right([r.job.job_id for r in records], after) if after else 0
            page = records[first : first + size]
            views = self._backend.board.views
            more = first + size < len(records)
            return pb.ListJobsResponse(
                jobs=[serde.job_status(record, views) for record in page],
                next_page_token=serde.page_token(page[-1].job.job_id) if more else "",
                total_size=len(records),
            )

    def GetPlan(self, request: pb.GetPlanRequest, context: grpc.ServicerContext) -> pb.PlanView:
        with reported(context):
            scope = serde.scope_of(request)
            start, end = serde.window_of(request)
            views = self._views()
            return serde.plan_view(views, scope, views.slots_overlapping(start, end))

    def GetFlexibility(
        self, request: pb.GetFlexibilityRequest, context: grpc.ServicerContext
    ) -> pb.Flexibility:
        with reported(context):
            scope = serde.scope_of(request)
            start, end = serde.window_of(request)
            views = self._views()
            return serde.flexibility(views, scope, views.slots_overlapping(start, end))

    def WhatIf(self, request: pb.WhatIfRequest, context: grpc.ServicerContext) -> pb.WhatIfResponse:
        with reported(context):
            strategy = serde.strategy_of(request)
            time_limit_s = serde.time_limit_of(request)
            if request.WhichOneof("scenario") == "scenario_json":
                scenario = scenario_from_json(request.scenario_json)
                self._what_if.check_scenario(scenario)
            else:
                overrides = serde.overrides_of(request)
                self._what_if.check_overrides(overrides)
                scenario = overridden_scenario(self._backend.current_scenario(), overrides)
            plan = self._what_if.plan(scenario, strategy, time_limit_s, context.time_remaining())
            return serde.what_if_response(plan, scenario)

    def _caller(self, context: grpc.ServicerContext) -> Principal:
        caller = self._tokens.caller(context.invocation_metadata())
        if caller is None:  # BearerAuth let the call through: a token table changed?
            raise NotAllowedError("the caller's token is not known")
        return caller

    def SubmitDemandResponse(
        self, request: pb.SubmitDemandResponseRequest, context: grpc.ServicerContext
    ) -> pb.DemandResponseDecision:
        with reported(context):
            event = serde.dr_event_of(request)
            caller = self._caller(context)
            decision = self._demand_response.submit(
                event,
                caller.name,
                context.time_remaining(),
                override=caller.role >= Role.ADMIN,
            )
            return serde.dr_decision(event.event_id, decision)

    def EnrollKey(self, request: pb.EnrollKeyRequest, context: grpc.ServicerContext) -> pb.KeyEntry:
        with reported(context):
            return serde.key_entry(self._registry.enroll(request.enrollment_json))

    def RevokeKey(self, request: pb.RevokeKeyRequest, context: grpc.ServicerContext) -> pb.KeyEntry:
        with reported(context):
            return serde.key_entry(self._registry.revoke(request.key_id))

    def ListKeys(
        self, request: pb.ListKeysRequest, context: grpc.ServicerContext
    ) -> pb.ListKeysResponse:
        with reported(context):
            return pb.ListKeysResponse(keys=[serde.key_entry(e) for e in self._registry.entries()])

    def GetOwnerPreferences(
        self, request: pb.GetOwnerPreferencesRequest, context: grpc.ServicerContext
    ) -> pb.OwnerPreferences:
        with reported(context):
            vehicle_id = serde.vehicle_id_of(request)
            return serde.owner_preferences(vehicle_id, self._backend.preferences(vehicle_id))

    def SetOwnerPreferences(
        self, request: pb.SetOwnerPreferencesRequest, context: grpc.ServicerContext
    ) -> pb.OwnerPreferences:
        with reported(context):
            caller = self._caller(context)
            preferences = serde.preferences_of(request, self._backend.now(), caller.name)
            stored = self._backend.set_preferences(preferences)
            return serde.owner_preferences(stored.vehicle_id, stored)

    def RegisterVehicle(
        self, request: pb.RegisterVehicleRequest, context: grpc.ServicerContext
    ) -> pb.VehicleRecord:
        with reported(context):
            record = serde.vehicle_record_of(request, self._backend.now())
            return serde.vehicle_record(self._backend.register_vehicle(record))

    def ListVehicles(
        self, request: pb.ListVehiclesRequest, context: grpc.ServicerContext
    ) -> pb.ListVehiclesResponse:
        with reported(context):
            size, after = serde.page_of(request)
            return serde.vehicle_list(self._backend.vehicles(after, size), self._backend.now())

    def GetFleetStatus(
        self, request: pb.GetFleetStatusRequest, context: grpc.ServicerContext
    ) -> pb.FleetStatus:
        with reported(context):
            return serde.fleet_status(self._backend.fleet_status(), self._backend.board.views)

    def WatchPlan(
        self, request: pb.WatchPlanRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.PlanView]:
        with reported(context):
            scope = serde.scope_of(request)
            with self._backend.board.watch() as watch:
                while context.is_active():
                    views = watch.next(WATCH_POLL_S)
                    if views is not None:
                        yield serde.plan_view(views, scope, range(len(views.slot_start_s)))
