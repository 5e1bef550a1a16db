"""`FleetClient`: the Python SDK of the fleet's gRPC API.

    with FleetClient(target="planner.example.org:443", token=token) as fleet:
        for job in fleet.list_jobs():
            print(job.job_id, job.state, job.executions_accepted, job.executions_total)

Every method returns small frozen dataclasses (units in field names, UTC-aware datetimes),
never protobuf messages; this module is the one place that converts them. A refused or
failed call raises `FleetError` with the status code's name and the server's message.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from executor.objects import ObjectStore
from idlefleet.client.connection import DEFAULT_TIMEOUT_S, Connection
from idlefleet.client.inputs import check_fits, load_inputs, model_signature, shards
from idlefleet.client.jobdata import (
    JobDataError,
    JobKeys,
    Progress,
    ServiceKey,
    ShardOutputRef,
    download_outputs,
    new_job_id,
    upload_job,
)
from idlefleet.credentials import state_dir
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.settings import StoreSettings
from idlefleet.store.lab import client_store_settings

T = TypeVar("T")

#: States a job leaves no more.
SETTLED_STATES = frozenset({"done", "failed", "expired", "cancelled"})

#: What to do about the codes a caller can fix, added to the server's message.
_HINTS = {
    "UNAUTHENTICATED": "give a token the server knows (--token-file or IDLEFLEET_TOKEN)",
    "PERMISSION_DENIED": "ask the operator for a token with a larger role",
    "UNAVAILABLE": "is the API running and the target (--target) right?",
}


class FleetError(Exception):
    """A call the API refused or could not answer: `code` is the gRPC status code's name
    (`UNAUTHENTICATED`, `NOT_FOUND`, ...), `details` the server's message, `hint` what a
    caller can do about it (may be empty). Its text: `CODE: details; hint`."""

    def __init__(self, code: str, details: str, hint: str = "") -> None:
        super().__init__(f"{code}: {details}" + (f"; {hint}" if hint else ""))
        self.code = code
        self.details = details
        self.hint = hint

    @classmethod
    def of(cls, error: grpc.RpcError) -> FleetError:
        code: grpc.StatusCode = error.code()
        details: str = error.details() or ""
        return cls(code.name, details, _HINTS.get(code.name, ""))


# --- what the API returns ----------------------------------------------------------------


@dataclass(frozen=True)
class JobStatus:
    """A job and its executions [count] (one execution: one shard on one car)."""

    job_id: str
    state: str  # pending, open, done, failed, expired, cancelled
    submitted_at: datetime
    release: datetime
    deadline: datetime
    shards: int
    replicas: int
    site_ids: tuple[str, ...]
    model_uri: str
    executions_total: int
    executions_accepted: int
    executions_in_flight: int
    executions_remaining: int
    executions_planned: int
    failed_results: int
    abandoned_shards: tuple[int, ...]

    @property
    def settled(self) -> bool:
        """The job's state changes no more."""
        return self.state in SETTLED_STATES


@dataclass(frozen=True)
class SubmittedJob:
    """A job just submitted: its status, whether it is new, the bytes uploaded [bytes] and
    where its key is kept (None: not sealed)."""

    status: JobStatus
    created: bool
    bytes_sent: int
    key_path: Path | None


@dataclass(frozen=True)
class PlanKpis:
    emissions_kg: float
    deferred_emissions_kg: float
    grid_energy_kwh: float
    pv_energy_kwh: float
    energy_cost: float  # [currency]
    wear_cost: float  # [currency]
    battery_throughput_kwh: float
    unmet_shards: int
    shortfall_kwh: float


@dataclass(frozen=True)
class VehicleShortfall:
    vehicle_id: str
    shortfall_kwh: float
    limited_by: tuple[str, ...]


@dataclass(frozen=True)
class DataNote:
    """What the planner knows of one car's data: what it lacks, how its energy is known
    (`reading`, `estimated` or `unknown`) and how old each source is [s] (None: never heard)."""

    vehicle_id: str
    lacks: tuple[str, ...]
    energy_source: str
    energy_age_s: float | None
    metered_since_kwh: float  # grid energy metered since the reading, which an estimate adds
    controllable: bool  # False: its charger does not follow profiles
    measured_age_s: float | None
    preferences_age_s: float | None
    registry_age_s: float | None

    @property
    def noteworthy(self) -> bool:
        """The car lacks something, its energy is not a reading, or its charger is not
        steered."""
        return bool(self.lacks) or self.energy_source != "reading" or not self.controllable


@dataclass(frozen=True)
class PlanSummary:
    plan_id: str
    revision: int
    horizon_start: datetime
    slot_minutes: int
    slots: int
    strategy: str  # milp, greedy, immediate
    status: str  # optimal, feasible
    objective: float  # [currency]
    gap_frac: float | None
    solve_s: float
    vehicles: int
    kpis: PlanKpis
    shortfalls: tuple[VehicleShortfall, ...]
    shortfall_reason: str
    #: region -> where its carbon intensity came from (a live feed, or a labelled fallback)
    intensity_sources: dict[str, str] = field(default_factory=dict)
    #: per car on sources apart: what its data lacked at horizon_start, in vehicle_id order
    data_notes: tuple[DataNote, ...] = ()


@dataclass(frozen=True)
class PlanSlot:
    """One slot of a scope's plan; sums over the scope's cars."""

    start: datetime
    charge_power_kw: float
    grid_import_kw: float | None  # unset for a vehicle
    compute_power_kw: float
    running_vehicles: int
    parked_vehicles: int
    energy_start_kwh: float | None  # unset for a vehicle not parked
    shards_by_job: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanView:
    scope: str  # "fleet", "site S", "vehicle V"
    plan: PlanSummary
    slots: tuple[PlanSlot, ...]


@dataclass(frozen=True)
class FlexibilitySlot:
    """How far a scope's import can rise or fall in one slot, assuming only it departs from
    the plan."""

    start: datetime
    baseline_import_kw: float
    import_cap_kw: float
    add_power_kw: float
    shed_power_kw: float
    parked_vehicles: int
    compute_capacity_shards: int
    planned_shards: int


@dataclass(frozen=True)
class Flexibility:
    scope: str
    plan: PlanSummary
    slots: tuple[FlexibilitySlot, ...]


@dataclass(frozen=True)
class SiteStatus:
    site_id: str
    region: str
    grid_limit_kw: float
    vehicles_parked: int
    vehicles_participating: int
    energy_kwh: float
    battery_kwh: float
    charger_kw: float
    dr_event_ids: tuple[str, ...]


@dataclass(frozen=True)
class JobCounts:
    pending: int
    open: int
    done: int
    failed: int
    expired: int
    cancelled: int


@dataclass(frozen=True)
class FleetStatus:
    as_of: datetime  # the server's clock
    latest_telemetry: datetime | None
    vehicles_known: int
    vehicles_parked: int
    vehicles_participating: int
    sites: tuple[SiteStatus, ...]
    jobs: JobCounts
    plan: PlanSummary | None  # None before the first plan


@dataclass(frozen=True)
class OwnerPreferences:
    """What an owner wants of their car: floor and departure wish [kWh], departure (UTC),
    consent to compute and its rules. `updated_at` None: none were ever set (the planner's
    defaults: no reserve, no departure, no consent)."""

    vehicle_id: str
    reserve_kwh: float = 0.0
    target_kwh: float | None = None  # None: the energy the car has
    expected_departure: datetime | None = None  # None: unknown
    participating: bool = False
    only_at_sites: tuple[str, ...] = ()  # empty: anywhere
    min_soc_frac: float | None = None  # never compute below this state of charge [0-1]
    solar_surplus_only: bool = False
    updated_at: datetime | None = None  # set by the service
    updated_by: str = ""  # the API principal who set them; empty: the car itself


@dataclass(frozen=True)
class VehicleRecord:
    """A car's fleet registry entry: what it is and where it charges."""

    vehicle_id: str
    battery_kwh: float
    charger_kw: float
    compute_kw: float
    charge_efficiency_frac: float = 0.92
    shards_per_slot: int = 1
    wear_cost_per_kwh: float = 0.0  # [currency/kWh]
    accelerator: str = "cpu"
    home_site_id: str | None = None
    vin: str | None = None
    id_tokens: tuple[str, ...] = ()
    evse: str | None = None  # "<station_id>/<evse_id>"
    retired: bool = False
    updated_at: datetime | None = None  # set by the service


@dataclass(frozen=True)
class VehicleEntry:
    """A car the service knows: its registry entry (None: none yet) and what its data lacks
    (None: it reports everything in one telemetry message)."""

    vehicle_id: str
    record: VehicleRecord | None
    data: DataNote | None


# --- protobuf to dataclasses ---------------------------------------------------------------


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _timestamp(moment: datetime) -> Timestamp:
    if moment.tzinfo is None:
        raise ValueError(f"{moment} has no timezone: give UTC-aware times")
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    """`JOB_STATE_DONE` -> `done`."""
    return str(enum.Name(value)).removeprefix(prefix).lower()


def job_status_of(message: pb.JobStatus) -> JobStatus:
    spec = message.job
    return JobStatus(
        job_id=spec.job_id,
        state=_enum_name(pb.JobState, message.state, "JOB_STATE_"),
        submitted_at=_time(message.submitted_at),
        release=_time(spec.release),
        deadline=_time(spec.deadline),
        shards=len(spec.input_uris),
        replicas=spec.replicas or 1,
        site_ids=tuple(spec.site_ids),
        model_uri=spec.model.uri,
        executions_total=message.executions_total,
        executions_accepted=message.executions_accepted,
        executions_in_flight=message.executions_in_flight,
        executions_remaining=message.executions_remaining,
        executions_planned=message.executions_planned,
        failed_results=message.failed_results,
        abandoned_shards=tuple(message.abandoned_shards),
    )


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def data_note_of(message: pb.VehicleDataNote) -> DataNote:
    return DataNote(
        vehicle_id=message.vehicle_id,
        lacks=tuple(message.lacks),
        energy_source=_enum_name(pb.EnergySource, message.energy_source, "ENERGY_SOURCE_"),
        energy_age_s=_optional(message, "energy_age_s"),
        metered_since_kwh=message.metered_since_kwh,
        controllable=message.controllable,
        measured_age_s=_optional(message, "measured_age_s"),
        preferences_age_s=_optional(message, "preferences_age_s"),
        registry_age_s=_optional(message, "registry_age_s"),
    )


def owner_preferences_of(message: pb.OwnerPreferences) -> OwnerPreferences:
    rules = message.rules
    return OwnerPreferences(
        vehicle_id=message.vehicle_id,
        reserve_kwh=message.reserve_kwh,
        target_kwh=_optional(message, "target_kwh"),
        expected_departure=(
            _time(message.expected_departure) if message.HasField("expected_departure") else None
        ),
        participating=message.participating,
        only_at_sites=tuple(rules.only_at_sites),
        min_soc_frac=_optional(rules, "min_soc_frac"),
        solar_surplus_only=rules.solar_surplus_only,
        updated_at=_time(message.updated_at) if message.HasField("updated_at") else None,
        updated_by=message.updated_by,
    )


def vehicle_record_of(message: pb.VehicleRecord) -> VehicleRecord:
    return VehicleRecord(
        vehicle_id=message.vehicle_id,
        battery_kwh=message.battery_kwh,
        charger_kw=message.charger_kw,
        compute_kw=message.compute_kw,
        charge_efficiency_frac=message.charge_efficiency_frac,
        shards_per_slot=message.shards_per_slot,
        wear_cost_per_kwh=message.wear_cost_per_kwh,
        accelerator=message.accelerator,
        home_site_id=message.home_site_id or None,
        vin=message.vin or None,
        id_tokens=tuple(message.id_tokens),
        evse=message.evse or None,
        retired=message.retired,
        updated_at=_time(message.updated_at) if message.HasField("updated_at") else None,
    )


def _set_preferences_request(preferences: OwnerPreferences) -> pb.SetOwnerPreferencesRequest:
    request = pb.SetOwnerPreferencesRequest(
        vehicle_id=preferences.vehicle_id,
        reserve_kwh=preferences.reserve_kwh,
        participating=preferences.participating,
        rules=pb.ConsentRules(
            only_at_sites=preferences.only_at_sites,
            solar_surplus_only=preferences.solar_surplus_only,
        ),
    )
    if preferences.target_kwh is not None:
        request.target_kwh = preferences.target_kwh
    if preferences.expected_departure is not None:
        request.expected_departure.CopyFrom(_timestamp(preferences.expected_departure))
    if preferences.min_soc_frac is not None:
        request.rules.min_soc_frac = preferences.min_soc_frac
    return request


def _vehicle_record_message(record: VehicleRecord) -> pb.VehicleRecord:
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
    )


def plan_summary_of(message: pb.PlanSummary) -> PlanSummary:
    k = message.kpis
    return PlanSummary(
        plan_id=message.plan_id,
        revision=message.revision,
        horizon_start=_time(message.horizon_start),
        slot_minutes=message.slot_minutes,
        slots=message.slots,
        strategy=_enum_name(pb.Strategy, message.strategy, "STRATEGY_"),
        status=_enum_name(pb.PlanStatus, message.status, "PLAN_STATUS_"),
        objective=message.objective,
        gap_frac=message.gap_frac if message.HasField("gap_frac") else None,
        solve_s=message.solve_s,
        vehicles=message.vehicles,
        kpis=PlanKpis(
            emissions_kg=k.emissions_kg,
            deferred_emissions_kg=k.deferred_emissions_kg,
            grid_energy_kwh=k.grid_energy_kwh,
            pv_energy_kwh=k.pv_energy_kwh,
            energy_cost=k.energy_cost,
            wear_cost=k.wear_cost,
            battery_throughput_kwh=k.battery_throughput_kwh,
            unmet_shards=k.unmet_shards,
            shortfall_kwh=k.shortfall_kwh,
        ),
        shortfalls=tuple(
            VehicleShortfall(s.vehicle_id, s.shortfall_kwh, tuple(s.limited_by))
            for s in message.shortfalls
        ),
        shortfall_reason=message.shortfall_reason,
        intensity_sources=dict(sorted(message.intensity_sources.items())),
        data_notes=tuple(data_note_of(note) for note in message.data_notes),
    )


def plan_view_of(message: pb.PlanView, scope: str) -> PlanView:
    return PlanView(
        scope=scope,
        plan=plan_summary_of(message.plan),
        slots=tuple(
            PlanSlot(
                start=_time(s.start),
                charge_power_kw=s.charge_power_kw,
                grid_import_kw=s.grid_import_kw if s.HasField("grid_import_kw") else None,
                compute_power_kw=s.compute_power_kw,
                running_vehicles=s.running_vehicles,
                parked_vehicles=s.parked_vehicles,
                energy_start_kwh=s.energy_start_kwh if s.HasField("energy_start_kwh") else None,
                shards_by_job={w.job_id: w.shards for w in s.work},
            )
            for s in message.slots
        ),
    )


def flexibility_of(message: pb.Flexibility, scope: str) -> Flexibility:
    return Flexibility(
        scope=scope,
        plan=plan_summary_of(message.plan),
        slots=tuple(
            FlexibilitySlot(
                start=_time(s.start),
                baseline_import_kw=s.baseline_import_kw,
                import_cap_kw=s.import_cap_kw,
                add_power_kw=s.add_power_kw,
                shed_power_kw=s.shed_power_kw,
                parked_vehicles=s.parked_vehicles,
                compute_capacity_shards=s.compute_capacity_shards,
                planned_shards=s.planned_shards,
            )
            for s in message.slots
        ),
    )


def fleet_status_of(message: pb.FleetStatus) -> FleetStatus:
    j = message.jobs
    return FleetStatus(
        as_of=_time(message.as_of),
        latest_telemetry=(
            _time(message.latest_telemetry) if message.HasField("latest_telemetry") else None
        ),
        vehicles_known=message.vehicles_known,
        vehicles_parked=message.vehicles_parked,
        vehicles_participating=message.vehicles_participating,
        sites=tuple(
            SiteStatus(
                site_id=s.site_id,
                region=s.region,
                grid_limit_kw=s.grid_limit_kw,
                vehicles_parked=s.vehicles_parked,
                vehicles_participating=s.vehicles_participating,
                energy_kwh=s.energy_kwh,
                battery_kwh=s.battery_kwh,
                charger_kw=s.charger_kw,
                dr_event_ids=tuple(s.dr_event_ids),
            )
            for s in message.sites
        ),
        jobs=JobCounts(j.pending, j.open, j.done, j.failed, j.expired, j.cancelled),
        plan=plan_summary_of(message.plan) if message.HasField("plan") else None,
    )


# --- the client ----------------------------------------------------------------------------


def default_keys_dir() -> Path:
    """Where submitted jobs' keys are kept: `<state dir>/jobs`."""
    return state_dir() / "jobs"


class FleetClient:
    """The fleet's API from outside. Keyword arguments as `Connection.open`; a context manager.

    Every call waits at most the connection's timeout and raises FleetError when refused."""

    def __init__(
        self,
        target: str | None = None,
        *,
        token: str | None = None,
        tls_ca: Path | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        tls_server_name: str | None = None,
        insecure: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._adopt(
            Connection.open(
                target,
                token=token,
                tls_ca=tls_ca,
                tls_cert=tls_cert,
                tls_key=tls_key,
                tls_server_name=tls_server_name,
                insecure=insecure,
                timeout_s=timeout_s,
            )
        )

    def _adopt(self, connection: Connection) -> None:
        self.connection = connection
        self._stub = pb_grpc.FleetPlannerStub(connection.channel)

    @classmethod
    def over(cls, connection: Connection) -> FleetClient:
        """A client on an open connection (closed with the client)."""
        client = cls.__new__(cls)
        client._adopt(connection)
        return client

    @classmethod
    def from_environment(cls, timeout_s: float = DEFAULT_TIMEOUT_S) -> FleetClient:
        """IDLEFLEET_GRPC_TARGET and IDLEFLEET_TOKEN (or the lab token file)."""
        return cls.over(Connection.from_environment(timeout_s))

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> FleetClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: object) -> T:
        """One unary call with the token and the timeout; FleetError when it fails."""
        try:
            return method(
                request, metadata=self.connection.metadata, timeout=self.connection.timeout_s
            )
        except grpc.RpcError as exc:
            raise FleetError.of(exc) from None

    # -- jobs ---------------------------------------------------------------------------
    def list_jobs(self, page_size: int = 100) -> list[JobStatus]:
        """Every job, in job id order (read `page_size` at a time)."""
        jobs: list[JobStatus] = []
        token = ""
        while True:
            page = self._call(
                self._stub.ListJobs, pb.ListJobsRequest(page_size=page_size, page_token=token)
            )
            jobs.extend(job_status_of(message) for message in page.jobs)
            token = page.next_page_token
            if not token:
                return jobs

    def job_status(self, job_id: str) -> JobStatus:
        return job_status_of(self._call(self._stub.GetJob, pb.GetJobRequest(job_id=job_id)))

    def watch_job(self, job_id: str, interval_s: float = 2.0) -> Iterator[JobStatus]:
        """The job's status now, then each time it changes (asked every `interval_s` [s]),
        ending with its settled status."""
        last: JobStatus | None = None
        while True:
            status = self.job_status(job_id)
            if status != last:
                yield status
                last = status
            if status.settled:
                return
            time.sleep(interval_s)

    def cancel_job(self, job_id: str) -> JobStatus:
        """Stop planning the job's open work (FAILED_PRECONDITION once it is finished)."""
        return job_status_of(self._call(self._stub.CancelJob, pb.CancelJobRequest(job_id=job_id)))

    # -- job data through the store -----------------------------------------------------
    def service_key(self) -> ServiceKey:
        """The newest enrolled service key (job keys are wrapped to it), checked against the
        key id it is listed under."""
        keys = self._call(self._stub.ListKeys, pb.ListKeysRequest()).keys
        live = [k for k in keys if k.role == "service" and not k.HasField("revoked_at")]
        if not live:
            raise FleetError("FAILED_PRECONDITION", "the fleet has no enrolled service key")
        newest = max(live, key=lambda k: (_time(k.enrolled_at), k.key_id))
        return ServiceKey.checked(
            newest.key_id, newest.signing_public_key, newest.agreement_public_key
        )

    def submit(
        self,
        model: Path | str,
        inputs: Path | str | np.ndarray,
        *,
        deadline: datetime,
        release: datetime | None = None,
        rows_per_shard: int = 256,
        replicas: int = 1,
        sites: Sequence[str] = (),
        value_per_shard: float = 1.0,
        job_id: str | None = None,
        seal: bool = True,
        public_model: bool = False,
        store: StoreSettings | None = None,
        keys_dir: Path | None = None,
        progress: Progress | None = None,
    ) -> SubmittedJob:
        """Cut `inputs` (an array, a `.npy` file or a directory of them) into shards of
        `rows_per_shard` rows, check them against the model's input, seal them (unless
        `seal` is False) and upload them with the model (`public_model`: the model stays
        plain, checked by sha256 only), then submit the job. `release` defaults to the
        service's now. `store` defaults to `client_store_settings()`; the job key is kept in
        `keys_dir` (default `<state dir>/jobs`). `progress` is told bytes as they are stored.
        JobDataError or InputsError before anything is uploaded when the inputs do not fit.
        """
        model_bytes = Path(model).read_bytes()
        array = inputs if isinstance(inputs, np.ndarray) else load_inputs(Path(inputs))
        check_fits(array, model_signature(model_bytes), rows_per_shard)
        settings = store or client_store_settings()
        if settings.url is None:  # client_store_settings never gives one without a url
            raise JobDataError("no store url")
        job_id = job_id or new_job_id()
        service_key = self.service_key() if seal else None
        keys = JobKeys(keys_dir or default_keys_dir())
        if seal:
            keys.path(job_id)  # refuse an id that cannot name a key file before uploading
        if release is None:
            release = self.fleet_status().as_of
        uploaded = upload_job(
            ObjectStore(settings.store_config()),
            settings.url,
            job_id,
            model_bytes,
            list(shards(array, rows_per_shard)),
            service_key=service_key,
            public_model=public_model,
            progress=progress,
        )
        key_path = None if uploaded.job_key is None else keys.save(job_id, uploaded.job_key)
        spec = pb.JobSpec(
            job_id=job_id,
            model=pb.ModelRef(
                uri=uploaded.model.uri, sha256=uploaded.model.sha256, sealed=uploaded.model.sealed
            ),
            input_uris=uploaded.input_uris,
            input_sha256s=uploaded.input_sha256s,
            output_uri=uploaded.output_uri,
            replicas=replicas,
            value_per_shard=value_per_shard,
            release=_timestamp(release),
            deadline=_timestamp(deadline),
            site_ids=sites,
        )
        if uploaded.data_key is not None:
            spec.data_key.CopyFrom(
                pb.WrappedKey(
                    key_id=uploaded.data_key.key_id,
                    ephemeral_public_key=uploaded.data_key.ephemeral_public_key,
                    sealed_key=uploaded.data_key.sealed_key,
                )
            )
        response = self._call(self._stub.SubmitJob, pb.SubmitJobRequest(job=spec))
        return SubmittedJob(
            job_status_of(response.job), response.created, uploaded.bytes_sent, key_path
        )

    def results(
        self,
        job_id: str,
        *,
        store: StoreSettings | None = None,
        keys_dir: Path | None = None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Every shard's output, fetched, checked against its sha256, opened with the job's
        key (kept where the job was submitted) and joined in shard order. JobDataError when
        a shard has no accepted output yet or none that checks."""
        answer = self._call(self._stub.GetJobOutputs, pb.GetJobOutputsRequest(job_id=job_id))
        spec = answer.job.job
        key = (
            JobKeys(keys_dir or default_keys_dir()).load(job_id)
            if spec.HasField("data_key")
            else None
        )
        settings = store or client_store_settings()
        outputs = [
            ShardOutputRef(o.shard_index, o.vehicle_id, o.output_uri, o.output_sha256)
            for o in answer.outputs
        ]
        return download_outputs(
            ObjectStore(settings.store_config()),
            job_id,
            len(spec.input_uris),
            outputs,
            key,
            progress=progress,
        )

    # -- the fleet and its plan ---------------------------------------------------------
    def fleet_status(self) -> FleetStatus:
        return fleet_status_of(self._call(self._stub.GetFleetStatus, pb.GetFleetStatusRequest()))

    def plan(self, site_id: str | None = None, vehicle_id: str | None = None) -> PlanView:
        """The current plan of the fleet, a site or a vehicle, over its whole horizon."""
        if site_id is not None and vehicle_id is not None:
            raise ValueError("a plan of a site or of a vehicle, not both")
        if site_id is not None:
            request, scope = pb.GetPlanRequest(site_id=site_id), f"site {site_id}"
        elif vehicle_id is not None:
            request, scope = pb.GetPlanRequest(vehicle_id=vehicle_id), f"vehicle {vehicle_id}"
        else:
            request, scope = pb.GetPlanRequest(), "fleet"
        return plan_view_of(self._call(self._stub.GetPlan, request), scope)

    def flexibility(self, site_id: str | None = None, *, region: str | None = None) -> Flexibility:
        """kW the fleet, a site or a region can add or shed, slot by slot."""
        if site_id is not None and region is not None:
            raise ValueError("the flexibility of a site or of a region, not both")
        if site_id is not None:
            request, scope = pb.GetFlexibilityRequest(site_id=site_id), f"site {site_id}"
        elif region is not None:
            request, scope = pb.GetFlexibilityRequest(region=region), f"region {region}"
        else:
            request, scope = pb.GetFlexibilityRequest(), "fleet"
        return flexibility_of(self._call(self._stub.GetFlexibility, request), scope)

    # -- owners and the fleet's cars ----------------------------------------------------
    def owner_preferences(self, vehicle_id: str) -> OwnerPreferences:
        """The car's preferences (role operator, or the car's owner)."""
        request = pb.GetOwnerPreferencesRequest(vehicle_id=vehicle_id)
        return owner_preferences_of(self._call(self._stub.GetOwnerPreferences, request))

    def set_owner_preferences(self, preferences: OwnerPreferences) -> OwnerPreferences:
        """Replace the car's preferences as a whole (`updated_at`/`updated_by` are the
        service's); what the service holds once it has read them."""
        request = _set_preferences_request(preferences)
        return owner_preferences_of(self._call(self._stub.SetOwnerPreferences, request))

    def update_owner_preferences(self, vehicle_id: str, **changes: Any) -> OwnerPreferences:
        """The car's current preferences with `changes` (fields of OwnerPreferences), set."""
        current = self.owner_preferences(vehicle_id)
        return self.set_owner_preferences(dataclasses.replace(current, **changes))

    def register_vehicle(self, record: VehicleRecord) -> VehicleRecord:
        """Write the car's registry entry, replacing its previous one (role admin)."""
        request = pb.RegisterVehicleRequest(vehicle=_vehicle_record_message(record))
        return vehicle_record_of(self._call(self._stub.RegisterVehicle, request))

    def list_vehicles(self, page_size: int = 100) -> list[VehicleEntry]:
        """Every car the service knows, in vehicle id order (read `page_size` at a time)."""
        vehicles: list[VehicleEntry] = []
        token = ""
        while True:
            page = self._call(
                self._stub.ListVehicles,
                pb.ListVehiclesRequest(page_size=page_size, page_token=token),
            )
            vehicles.extend(
                VehicleEntry(
                    vehicle_id=v.vehicle_id,
                    record=vehicle_record_of(v.record) if v.HasField("record") else None,
                    data=data_note_of(v.data) if v.HasField("data") else None,
                )
                for v in page.vehicles
            )
            token = page.next_page_token
            if not token:
                return vehicles

    # -- health -------------------------------------------------------------------------
    def health(self, service: str = "") -> str:
        """The server's grpc.health.v1 status (`SERVING`, `NOT_SERVING`, ...); needs no
        token. FleetError when nothing answers."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self.connection.channel)
        try:
            answer = stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=self.connection.timeout_s
            )
        except grpc.RpcError as exc:
            raise FleetError.of(exc) from None
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
