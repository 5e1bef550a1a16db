"""The one place that converts between protobuf messages and domain objects.

Requests become domain values or an InvalidFieldError naming the request field; domain records
and views become response messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.queries.errors import InvalidFieldError, field_path, validated
from idlefleet.queries.job_outlook import planned_executions
from idlefleet.queries.owners import VehicleEntry, VehiclePage, stamped_preferences
from idlefleet.queries.ports import FleetStatusView, JobRecord, JobState
from idlefleet.queries.views import FLEET, PlanViews, Scope, ScopeKind
from idlefleet.queries.what_if import Overrides
from idlefleet.service.dr import Decision
from optimizer import DrEvent, Plan, Scenario, Strategy, scenario_to_dict
from optimizer import Job as ScenarioJob
from streams.messages import (
    DemandResponseEvent,
    Enrollment,
    Job,
    OwnerPreferences,
    Result,
    VehicleRecord,
)
from streams.serde import MAX_MESSAGE_BYTES, encode
from streams.sources import DataNote

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_JOB_STATES = {
    JobState.PENDING: pb.JOB_STATE_PENDING,
    JobState.OPEN: pb.JOB_STATE_OPEN,
    JobState.DONE: pb.JOB_STATE_DONE,
    JobState.FAILED: pb.JOB_STATE_FAILED,
    JobState.EXPIRED: pb.JOB_STATE_EXPIRED,
    JobState.CANCELLED: pb.JOB_STATE_CANCELLED,
}
_STRATEGIES = {
    pb.STRATEGY_UNSPECIFIED: Strategy.MILP,
    pb.STRATEGY_MILP: Strategy.MILP,
    pb.STRATEGY_GREEDY: Strategy.GREEDY,
    pb.STRATEGY_IMMEDIATE: Strategy.IMMEDIATE,
}
_STRATEGY_ENUMS = {
    Strategy.MILP: pb.STRATEGY_MILP,
    Strategy.GREEDY: pb.STRATEGY_GREEDY,
    Strategy.IMMEDIATE: pb.STRATEGY_IMMEDIATE,
}
_PLAN_STATUSES = {"optimal": pb.PLAN_STATUS_OPTIMAL, "feasible": pb.PLAN_STATUS_FEASIBLE}
_SCOPE_KINDS: dict[str, ScopeKind] = {
    "site_id": "site",
    "vehicle_id": "vehicle",
    "region": "region",
}
#: Job fields whose request name differs from the domain's.
_JOB_FIELD_NAMES = {"sites": "site_ids"}
_ENERGY_SOURCES = {
    "reading": pb.ENERGY_SOURCE_READING,
    "estimated": pb.ENERGY_SOURCE_ESTIMATED,
    "unknown": pb.ENERGY_SOURCE_UNKNOWN,
}


# --- requests -------------------------------------------------------------------------------


def _time(message: Any, name: str, path: str) -> datetime | None:
    """A Timestamp field as an aware UTC datetime; None when unset."""
    if not message.HasField(name):
        return None
    stamp: Timestamp = getattr(message, name)
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidFieldError(path, f"not a valid timestamp: {exc}") from exc


def _non_negative(value: float, path: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise InvalidFieldError(path, f"must be a finite number >= 0, got {value}")
    return value


def job_from_proto(spec: pb.JobSpec, submitted_at: datetime) -> Job:
    """A job to submit; InvalidFieldError naming `job.<field>` if it is not valid."""
    fields: dict[str, Any] = {
        "job_id": spec.job_id,
        "submitted_at": submitted_at,
        "model": {
            "uri": spec.model.uri,
            "sha256": spec.model.sha256,
            "sealed": spec.model.sealed,
        },
        "input_uris": list(spec.input_uris),
        "output_uri": spec.output_uri,
        "replicas": spec.replicas or 1,
        "value_per_shard": spec.value_per_shard,
    }
    for name in ("release", "deadline"):
        when = _time(spec, name, f"job.{name}")
        if when is not None:
            fields[name] = when
    if spec.site_ids:
        fields["sites"] = list(spec.site_ids)
    if spec.input_sha256s:
        fields["input_sha256s"] = list(spec.input_sha256s)
    if spec.HasField("data_key"):
        key = spec.data_key
        fields["data_key"] = {
            "key_id": key.key_id,
            "ephemeral_public_key": key.ephemeral_public_key,
            "sealed_key": key.sealed_key,
        }
    try:
        job = Job.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = field_path("job", first["loc"], _JOB_FIELD_NAMES)
        raise InvalidFieldError(path, first["msg"]) from exc
    size_bytes = len(encode(job))
    if size_bytes > MAX_MESSAGE_BYTES:  # the jobs topic's readers would refuse it
        raise InvalidFieldError(
            "job", f"is {size_bytes} bytes as a message, more than the {MAX_MESSAGE_BYTES} allowed"
        )
    return job


def job_id_of(
    request: pb.GetJobRequest | pb.CancelJobRequest | pb.GetJobOutputsRequest,
) -> str:
    if not request.job_id:
        raise InvalidFieldError("job_id", "is required")
    return request.job_id


def page_of(request: pb.ListJobsRequest | pb.ListVehiclesRequest) -> tuple[int, str]:
    """Page size and the id the page starts after ("" for the first page)."""
    size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    try:
        after = base64.urlsafe_b64decode(request.page_token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidFieldError("page_token", "not a token this server gave") from exc
    if request.page_token and not after:
        raise InvalidFieldError("page_token", "not a token this server gave")
    return size, after


def page_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode()


def vehicle_id_of(request: pb.GetOwnerPreferencesRequest) -> str:
    if not request.vehicle_id:
        raise InvalidFieldError("vehicle_id", "is required")
    return request.vehicle_id


def preferences_of(
    request: pb.SetOwnerPreferencesRequest, updated_at: datetime, updated_by: str
) -> OwnerPreferences:
    """The preferences to store, stamped; InvalidFieldError naming the request field
    (`idlefleet.queries.owners.stamped_preferences`; the context's checks are its
    `check_preferences`)."""
    return stamped_preferences(
        request.vehicle_id,
        updated_at=updated_at,
        updated_by=updated_by,
        participating=request.participating,
        reserve_kwh=request.reserve_kwh,
        target_kwh=request.target_kwh if request.HasField("target_kwh") else None,
        expected_departure=_time(request, "expected_departure", "expected_departure"),
        only_at_sites=list(request.rules.only_at_sites) or None,
        min_soc_frac=request.rules.min_soc_frac if request.rules.HasField("min_soc_frac") else None,
        solar_surplus_only=request.rules.solar_surplus_only,
    )


def vehicle_record_of(request: pb.RegisterVehicleRequest, updated_at: datetime) -> VehicleRecord:
    """The registry entry to store, stamped; InvalidFieldError naming `vehicle.<field>`."""
    if not request.HasField("vehicle"):
        raise InvalidFieldError("vehicle", "is required")
    v = request.vehicle
    fields: dict[str, Any] = {
        "vehicle_id": v.vehicle_id,
        "updated_at": updated_at,
        "battery_kwh": v.battery_kwh,
        "charger_kw": v.charger_kw,
        "compute_kw": v.compute_kw,
        "wear_cost_per_kwh": v.wear_cost_per_kwh,
        "id_tokens": list(v.id_tokens),
        "retired": v.retired,
    }
    for name in ("charge_efficiency_frac", "shards_per_slot"):
        if v.HasField(name):
            fields[name] = getattr(v, name)
    for name in ("accelerator", "home_site_id", "vin", "evse"):
        if getattr(v, name):
            fields[name] = getattr(v, name)
    record: VehicleRecord = validated(VehicleRecord, fields, "vehicle", _JOB_FIELD_NAMES)
    return record


def scope_of(
    request: pb.GetPlanRequest | pb.WatchPlanRequest | pb.GetFlexibilityRequest,
) -> Scope:
    """The request's scope: the fleet when none is set."""
    which = request.WhichOneof("scope")
    if which is None:
        return FLEET
    identifier: str = getattr(request, which)
    if not identifier:
        raise InvalidFieldError(which, "must not be empty")
    return Scope(_SCOPE_KINDS[which], identifier)


def window_of(
    request: pb.GetPlanRequest | pb.GetFlexibilityRequest,
) -> tuple[datetime | None, datetime | None]:
    start = _time(request.window, "start", "window.start")
    end = _time(request.window, "end", "window.end")
    if start is not None and end is not None and end <= start:
        raise InvalidFieldError("window.end", "must be after window.start")
    return start, end


def strategy_of(request: pb.WhatIfRequest) -> Strategy:
    strategy = _STRATEGIES.get(request.strategy)
    if strategy is None:
        raise InvalidFieldError("strategy", f"unknown strategy {request.strategy}")
    return strategy


def time_limit_of(request: pb.WhatIfRequest) -> float:
    return _non_negative(request.time_limit_s, "time_limit_s")


def _required_time(message: Any, name: str, path: str) -> datetime:
    when = _time(message, name, f"{path}.{name}")
    if when is None:
        raise InvalidFieldError(f"{path}.{name}", "is required")
    return when


def _dr_event(spec: pb.DrEventSpec, path: str) -> DrEvent:
    target = spec.WhichOneof("target")
    if target is None:
        raise InvalidFieldError(path, "set site_id or region")
    return DrEvent(
        id=spec.event_id,
        site=spec.site_id if target == "site_id" else None,
        region=spec.region if target == "region" else None,
        start=_required_time(spec, "start", path),
        end=_required_time(spec, "end", path),
        max_import_kw=spec.max_import_kw,
    )


def _what_if_job(spec: pb.WhatIfJob, path: str) -> ScenarioJob:
    return ScenarioJob(
        id=spec.job_id,
        shards=spec.shards,
        replicas=spec.replicas or 1,
        value_per_shard=spec.value_per_shard,
        release=_time(spec, "release", f"{path}.release"),
        deadline=_time(spec, "deadline", f"{path}.deadline"),
        sites=tuple(spec.site_ids) if spec.site_ids else None,
    )


def overrides_of(request: pb.WhatIfRequest) -> Overrides:
    """The request's overrides; none when it sets neither overrides nor a scenario."""
    o = request.overrides
    return Overrides(
        carbon_price_per_tonne=(
            o.carbon_price_per_tonne if o.HasField("carbon_price_per_tonne") else None
        ),
        grid_limit_kw_by_site=dict(o.grid_limit_kw_by_site),
        remove_vehicle_ids=tuple(o.remove_vehicle_ids),
        dr_events=tuple(
            _dr_event(e, f"overrides.dr_events[{i}]") for i, e in enumerate(o.dr_events)
        ),
        jobs=tuple(_what_if_job(j, f"overrides.jobs[{i}]") for i, j in enumerate(o.jobs)),
    )


# --- responses ------------------------------------------------------------------------------


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _job_spec(job: Job) -> pb.JobSpec:
    key = job.data_key
    return pb.JobSpec(
        job_id=job.job_id,
        model=pb.ModelRef(uri=job.model.uri, sha256=job.model.sha256, sealed=job.model.sealed),
        input_uris=job.input_uris,
        output_uri=job.output_uri,
        replicas=job.replicas,
        value_per_shard=job.value_per_shard,
        release=_timestamp(job.release),
        deadline=_timestamp(job.deadline),
        site_ids=job.sites or (),
        input_sha256s=job.input_sha256s or (),
        data_key=None
        if key is None
        else pb.WrappedKey(
            key_id=key.key_id,
            ephemeral_public_key=key.ephemeral_public_key,
            sealed_key=key.sealed_key,
        ),
    )


def job_status(record: JobRecord, views: PlanViews | None) -> pb.JobStatus:
    job, progress = record.job, record.progress
    status = pb.JobStatus(
        job=_job_spec(job),
        submitted_at=_timestamp(job.submitted_at),
        state=_JOB_STATES[record.state],
        executions_total=job.shards * job.replicas,
        executions_remaining=job.shards * job.replicas,
        executions_planned=planned_executions(views, job.job_id),
    )
    if progress is not None:
        status.executions_accepted = progress.accepted
        status.executions_in_flight = progress.in_flight
        status.executions_remaining = progress.remaining
        status.failed_results = progress.failed_results
        status.abandoned_shards.extend(progress.abandoned_shards)
    return status


def _kpis(plan: Plan) -> pb.Kpis:
    k = plan.kpis
    if k is None:
        return pb.Kpis()
    return pb.Kpis(
        emissions_kg=k.emissions_kg,
        deferred_emissions_kg=k.deferred_emissions_kg,
        grid_energy_kwh=k.grid_energy_kwh,
        pv_energy_kwh=k.pv_energy_kwh,
        energy_cost=k.energy_cost,
        wear_cost=k.wear_cost,
        battery_throughput_kwh=k.battery_throughput_kwh,
        unmet_shards=k.unmet_shards,
        shortfall_kwh=k.shortfall_kwh,
    )


def plan_summary(
    plan: Plan,
    scenario: Scenario,
    plan_id: str = "",
    revision: int = 0,
    intensity_sources: Mapping[str, str] | None = None,
    data_notes: tuple[DataNote, ...] = (),
) -> pb.PlanSummary:
    horizon = scenario.horizon
    summary = pb.PlanSummary(
        plan_id=plan_id,
        revision=revision,
        horizon_start=_timestamp(horizon.start),
        slot_minutes=horizon.slot_minutes,
        slots=horizon.slots,
        strategy=_STRATEGY_ENUMS[Strategy(plan.strategy)],
        status=_PLAN_STATUSES[plan.status.value],
        objective=plan.objective or 0.0,
        solve_s=plan.solve_s,
        vehicles=len(scenario.vehicles),
        kpis=_kpis(plan),
        shortfalls=[
            pb.VehicleShortfall(
                vehicle_id=vid,
                shortfall_kwh=schedule.shortfall_kwh,
                limited_by=list(schedule.limited_by),
            )
            for vid, schedule in sorted(plan.vehicles.items())
            if schedule.shortfall_kwh > 0
        ],
        shortfall_reason=plan.reason or "",
        intensity_sources=dict(intensity_sources or {}),
        data_notes=[data_note(note, horizon.start) for note in data_notes],
    )
    if plan.gap_frac is not None:
        summary.gap_frac = plan.gap_frac
    return summary


def what_if_response(plan: Plan, scenario: Scenario) -> pb.WhatIfResponse:
    return pb.WhatIfResponse(
        plan=plan_summary(plan, scenario), scenario_json=json.dumps(scenario_to_dict(scenario))
    )


#: The newest plan's summary, made once: every GetPlan, GetFlexibility, WatchPlan and fleet
#: status carries it, with a data note per car. Callers copy it into their responses.
_last_summary: tuple[PlanViews, pb.PlanSummary] | None = None


def views_summary(views: PlanViews) -> pb.PlanSummary:
    """The summary of `views`' plan; do not change it (it is shared)."""
    global _last_summary
    cached = _last_summary
    if cached is not None and cached[0] is views:
        return cached[1]
    snapshot = views.snapshot
    summary = plan_summary(
        snapshot.plan,
        snapshot.scenario,
        views.plan_id,
        views.revision,
        snapshot.intensity_sources,
        views.data_notes,
    )
    _last_summary = (views, summary)
    return summary


def plan_view(views: PlanViews, scope: Scope, slots: range) -> pb.PlanView:
    series = views.slot_series(scope)
    starts = views.slot_start_s
    out = pb.PlanView(plan=views_summary(views))
    for s in slots:
        slot = pb.PlanSlot(
            start=Timestamp(seconds=starts[s]),
            charge_power_kw=series.charge_power_kw[s],
            compute_power_kw=series.compute_power_kw[s],
            running_vehicles=series.running_vehicles[s],
            parked_vehicles=series.parked_vehicles[s],
            work=[pb.JobShards(job_id=job_id, shards=n) for job_id, n in series.work[s]],
        )
        if series.grid_import_kw is not None:
            slot.grid_import_kw = series.grid_import_kw[s]
        energy = series.energy_start_kwh[s]
        if energy is not None:
            slot.energy_start_kwh = energy
        out.slots.append(slot)
    return out


def flexibility(views: PlanViews, scope: Scope, slots: range) -> pb.Flexibility:
    f = views.flexibility_series(scope)
    starts = views.slot_start_s
    return pb.Flexibility(
        plan=views_summary(views),
        slots=[
            pb.FlexibilitySlot(
                start=Timestamp(seconds=starts[s]),
                baseline_import_kw=f.baseline_import_kw[s],
                import_cap_kw=f.import_cap_kw[s],
                add_power_kw=f.add_power_kw[s],
                shed_power_kw=f.shed_power_kw[s],
                parked_vehicles=f.parked_vehicles[s],
                compute_capacity_shards=f.compute_capacity_shards[s],
                planned_shards=f.planned_shards[s],
            )
            for s in slots
        ],
    )


def fleet_status(view: FleetStatusView, views: PlanViews | None) -> pb.FleetStatus:
    counts: Mapping[JobState, int] = view.job_counts
    status = pb.FleetStatus(
        as_of=_timestamp(view.as_of),
        vehicles_known=view.vehicles_known,
        vehicles_parked=view.vehicles_parked,
        vehicles_participating=view.vehicles_participating,
        sites=[
            pb.SiteStatus(
                site_id=s.site.site_id,
                region=s.site.region,
                grid_limit_kw=s.site.grid_limit_kw,
                vehicles_parked=s.vehicles_parked,
                vehicles_participating=s.vehicles_participating,
                energy_kwh=s.energy_kwh,
                battery_kwh=s.battery_kwh,
                charger_kw=s.charger_kw,
                dr_event_ids=s.dr_event_ids,
            )
            for s in view.sites
        ],
        jobs=pb.JobCounts(**{state.value: counts.get(state, 0) for state in JobState}),
    )
    if view.latest_telemetry is not None:
        status.latest_telemetry.CopyFrom(_timestamp(view.latest_telemetry))
    if views is not None:
        status.plan.CopyFrom(views_summary(views))
    return status


def dr_event_of(request: pb.SubmitDemandResponseRequest) -> DemandResponseEvent:
    """The request's cap as a DR-topic message; InvalidFieldError naming what is wrong."""
    if not request.HasField("event"):
        raise InvalidFieldError("event", "required")
    cap = _dr_event(request.event, "event")
    try:
        return DemandResponseEvent(
            event_id=cap.id,
            site_id=cap.site,
            region=cap.region,
            start=cap.start,
            end=cap.end,
            max_import_kw=cap.max_import_kw,
            cancelled=request.cancel,
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "event"
        raise InvalidFieldError(f"event.{field}", first["msg"]) from exc


def dr_decision(event_id: str, decision: Decision) -> pb.DemandResponseDecision:
    return pb.DemandResponseDecision(
        event_id=event_id,
        honoured=decision.honour,
        reason=decision.reason,
        plan_s=decision.plan_s,
    )


def job_outputs(record: JobRecord, results: list[Result], views: PlanViews | None) -> pb.JobOutputs:
    return pb.JobOutputs(
        job=job_status(record, views),
        outputs=[
            pb.ShardOutput(
                shard_index=r.shard_index,
                vehicle_id=r.vehicle_id,
                output_uri=r.output_uri,
                output_sha256=r.output_sha256,
            )
            for r in results
        ],
    )


def key_entry(entry: Enrollment) -> pb.KeyEntry:
    """A registry entry as the API shows it, with its public keys."""
    message = pb.KeyEntry(
        key_id=entry.key_id,
        principal=entry.principal,
        role=entry.role,
        enrolled_at=_timestamp(entry.enrolled_at),
        signing_public_key=entry.signing_public_key,
        agreement_public_key=entry.agreement_public_key,
    )
    if entry.revoked_at is not None:
        message.revoked_at.CopyFrom(_timestamp(entry.revoked_at))
    return message


def data_note(note: DataNote, now: datetime) -> pb.VehicleDataNote:
    """A car's data note, its ages [s] counted to `now`."""
    message = pb.VehicleDataNote(
        vehicle_id=note.vehicle_id,
        lacks=note.lacks,
        energy_source=_ENERGY_SOURCES[note.energy_source],
        metered_since_kwh=note.metered_since_kwh,
        controllable=note.controllable,
    )
    for name, at in (
        ("energy_age_s", note.energy_read_at),
        ("measured_age_s", note.measured_at),
        ("preferences_age_s", note.preferences_at),
        ("registry_age_s", note.registry_at),
    ):
        age_s = note.age_s(at, now)
        if age_s is not None:
            setattr(message, name, age_s)
    return message


def _consent_rules(preferences: OwnerPreferences) -> pb.ConsentRules:
    rules = preferences.rules
    message = pb.ConsentRules(
        only_at_sites=rules.only_at_sites or (), solar_surplus_only=rules.solar_surplus_only
    )
    if rules.min_soc_frac is not None:
        message.min_soc_frac = rules.min_soc_frac
    return message


def owner_preferences(vehicle_id: str, preferences: OwnerPreferences | None) -> pb.OwnerPreferences:
    """The car's preferences as stored; without any, the planner's defaults (no consent)."""
    if preferences is None:
        return pb.OwnerPreferences(vehicle_id=vehicle_id, participating=False)
    message = pb.OwnerPreferences(
        vehicle_id=preferences.vehicle_id,
        reserve_kwh=preferences.reserve_kwh,
        participating=preferences.participating,
        rules=_consent_rules(preferences),
        updated_at=_timestamp(preferences.updated_at),
        updated_by=preferences.updated_by or "",
    )
    if preferences.target_kwh is not None:
        message.target_kwh = preferences.target_kwh
    if preferences.expected_departure is not None:
        message.expected_departure.CopyFrom(_timestamp(preferences.expected_departure))
    return message


def vehicle_record(record: VehicleRecord) -> pb.VehicleRecord:
    return pb.VehicleRecord(
        vehicle_id=record.vehicle_id,
        battery_kwh=record.battery_kwh,
        charger_kw=record.charger_kw,
        charge_efficiency_frac=record.charge_efficiency_frac,
        compute_kw=record.compute_kw,
        shards_per_slot=record.shards_per_slot,
        wear_cost_per_kwh=record.wear_cost_per_kwh,
        accelerator=record.accelerator,
        home_site_id=record.home_site_id or "",
        vin=record.vin or "",
        id_tokens=record.id_tokens,
        evse=record.evse or "",
        retired=record.retired,
        updated_at=_timestamp(record.updated_at),
    )


def _vehicle_entry(entry: VehicleEntry, now: datetime) -> pb.VehicleEntry:
    message = pb.VehicleEntry(vehicle_id=entry.vehicle_id)
    if entry.record is not None:
        message.record.CopyFrom(vehicle_record(entry.record))
    if entry.note is not None:
        message.data.CopyFrom(data_note(entry.note, now))
    return message


def vehicle_list(page: VehiclePage, now: datetime) -> pb.ListVehiclesResponse:
    """A page of cars, their ages counted to `now` (the service's clock)."""
    entries = page.entries
    return pb.ListVehiclesResponse(
        vehicles=[_vehicle_entry(entry, now) for entry in entries],
        next_page_token=page_token(entries[-1].vehicle_id) if page.more and entries else "",
        total_size=page.total,
        as_of=_timestamp(now),
    )
