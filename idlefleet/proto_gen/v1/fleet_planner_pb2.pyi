import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_OPEN: _ClassVar[JobState]
    JOB_STATE_DONE: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_EXPIRED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class Strategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRATEGY_UNSPECIFIED: _ClassVar[Strategy]
    STRATEGY_MILP: _ClassVar[Strategy]
    STRATEGY_GREEDY: _ClassVar[Strategy]
    STRATEGY_IMMEDIATE: _ClassVar[Strategy]

class PlanStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAN_STATUS_UNSPECIFIED: _ClassVar[PlanStatus]
    PLAN_STATUS_OPTIMAL: _ClassVar[PlanStatus]
    PLAN_STATUS_FEASIBLE: _ClassVar[PlanStatus]

class EnergySource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENERGY_SOURCE_UNSPECIFIED: _ClassVar[EnergySource]
    ENERGY_SOURCE_READING: _ClassVar[EnergySource]
    ENERGY_SOURCE_ESTIMATED: _ClassVar[EnergySource]
    ENERGY_SOURCE_UNKNOWN: _ClassVar[EnergySource]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_PENDING: JobState
JOB_STATE_OPEN: JobState
JOB_STATE_DONE: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_EXPIRED: JobState
JOB_STATE_CANCELLED: JobState
STRATEGY_UNSPECIFIED: Strategy
STRATEGY_MILP: Strategy
STRATEGY_GREEDY: Strategy
STRATEGY_IMMEDIATE: Strategy
PLAN_STATUS_UNSPECIFIED: PlanStatus
PLAN_STATUS_OPTIMAL: PlanStatus
PLAN_STATUS_FEASIBLE: PlanStatus
ENERGY_SOURCE_UNSPECIFIED: EnergySource
ENERGY_SOURCE_READING: EnergySource
ENERGY_SOURCE_ESTIMATED: EnergySource
ENERGY_SOURCE_UNKNOWN: EnergySource

class ModelRef(_message.Message):
    __slots__ = ("uri", "sha256", "sealed")
    URI_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    uri: str
    sha256: str
    sealed: bool
    def __init__(self, uri: _Optional[str] = ..., sha256: _Optional[str] = ..., sealed: _Optional[bool] = ...) -> None: ...

class WrappedKey(_message.Message):
    __slots__ = ("key_id", "ephemeral_public_key", "sealed_key")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SEALED_KEY_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    ephemeral_public_key: str
    sealed_key: str
    def __init__(self, key_id: _Optional[str] = ..., ephemeral_public_key: _Optional[str] = ..., sealed_key: _Optional[str] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("job_id", "model", "input_uris", "output_uri", "replicas", "value_per_shard", "release", "deadline", "site_ids", "input_sha256s", "data_key")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_URIS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    VALUE_PER_SHARD_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    SITE_IDS_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHA256S_FIELD_NUMBER: _ClassVar[int]
    DATA_KEY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model: ModelRef
    input_uris: _containers.RepeatedScalarFieldContainer[str]
    output_uri: str
    replicas: int
    value_per_shard: float
    release: _timestamp_pb2.Timestamp
    deadline: _timestamp_pb2.Timestamp
    site_ids: _containers.RepeatedScalarFieldContainer[str]
    input_sha256s: _containers.RepeatedScalarFieldContainer[str]
    data_key: WrappedKey
    def __init__(self, job_id: _Optional[str] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., input_uris: _Optional[_Iterable[str]] = ..., output_uri: _Optional[str] = ..., replicas: _Optional[int] = ..., value_per_shard: _Optional[float] = ..., release: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., site_ids: _Optional[_Iterable[str]] = ..., input_sha256s: _Optional[_Iterable[str]] = ..., data_key: _Optional[_Union[WrappedKey, _Mapping]] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: JobSpec
    def __init__(self, job: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job", "created")
    JOB_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    job: JobStatus
    created: bool
    def __init__(self, job: _Optional[_Union[JobStatus, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobStatus(_message.Message):
    __slots__ = ("job", "submitted_at", "state", "executions_total", "executions_accepted", "executions_in_flight", "executions_remaining", "executions_planned", "failed_results", "abandoned_shards")
    JOB_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_PLANNED_FIELD_NUMBER: _ClassVar[int]
    FAILED_RESULTS_FIELD_NUMBER: _ClassVar[int]
    ABANDONED_SHARDS_FIELD_NUMBER: _ClassVar[int]
    job: JobSpec
    submitted_at: _timestamp_pb2.Timestamp
    state: JobState
    executions_total: int
    executions_accepted: int
    executions_in_flight: int
    executions_remaining: int
    executions_planned: int
    failed_results: int
    abandoned_shards: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, job: _Optional[_Union[JobSpec, _Mapping]] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., executions_total: _Optional[int] = ..., executions_accepted: _Optional[int] = ..., executions_in_flight: _Optional[int] = ..., executions_remaining: _Optional[int] = ..., executions_planned: _Optional[int] = ..., failed_results: _Optional[int] = ..., abandoned_shards: _Optional[_Iterable[int]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token", "total_size")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobStatus]
    next_page_token: str
    total_size: int
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetJobOutputsRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ShardOutput(_message.Message):
    __slots__ = ("shard_index", "vehicle_id", "output_uri", "output_sha256")
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SHA256_FIELD_NUMBER: _ClassVar[int]
    shard_index: int
    vehicle_id: str
    output_uri: str
    output_sha256: str
    def __init__(self, shard_index: _Optional[int] = ..., vehicle_id: _Optional[str] = ..., output_uri: _Optional[str] = ..., output_sha256: _Optional[str] = ...) -> None: ...

class JobOutputs(_message.Message):
    __slots__ = ("job", "outputs")
    JOB_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    job: JobStatus
    outputs: _containers.RepeatedCompositeFieldContainer[ShardOutput]
    def __init__(self, job: _Optional[_Union[JobStatus, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[ShardOutput, _Mapping]]] = ...) -> None: ...

class TimeWindow(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Kpis(_message.Message):
    __slots__ = ("emissions_kg", "deferred_emissions_kg", "grid_energy_kwh", "pv_energy_kwh", "energy_cost", "wear_cost", "battery_throughput_kwh", "unmet_shards", "shortfall_kwh")
    EMISSIONS_KG_FIELD_NUMBER: _ClassVar[int]
    DEFERRED_EMISSIONS_KG_FIELD_NUMBER: _ClassVar[int]
    GRID_ENERGY_KWH_FIELD_NUMBER: _ClassVar[int]
    PV_ENERGY_KWH_FIELD_NUMBER: _ClassVar[int]
    ENERGY_COST_FIELD_NUMBER: _ClassVar[int]
    WEAR_COST_FIELD_NUMBER: _ClassVar[int]
    BATTERY_THROUGHPUT_KWH_FIELD_NUMBER: _ClassVar[int]
    UNMET_SHARDS_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_KWH_FIELD_NUMBER: _ClassVar[int]
    emissions_kg: float
    deferred_emissions_kg: float
    grid_energy_kwh: float
    pv_energy_kwh: float
    energy_cost: float
    wear_cost: float
    battery_throughput_kwh: float
    unmet_shards: int
    shortfall_kwh: float
    def __init__(self, emissions_kg: _Optional[float] = ..., deferred_emissions_kg: _Optional[float] = ..., grid_energy_kwh: _Optional[float] = ..., pv_energy_kwh: _Optional[float] = ..., energy_cost: _Optional[float] = ..., wear_cost: _Optional[float] = ..., battery_throughput_kwh: _Optional[float] = ..., unmet_shards: _Optional[int] = ..., shortfall_kwh: _Optional[float] = ...) -> None: ...

class VehicleShortfall(_message.Message):
    __slots__ = ("vehicle_id", "shortfall_kwh", "limited_by")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_KWH_FIELD_NUMBER: _ClassVar[int]
    LIMITED_BY_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    shortfall_kwh: float
    limited_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, vehicle_id: _Optional[str] = ..., shortfall_kwh: _Optional[float] = ..., limited_by: _Optional[_Iterable[str]] = ...) -> None: ...

class PlanSummary(_message.Message):
    __slots__ = ("plan_id", "revision", "horizon_start", "slot_minutes", "slots", "strategy", "status", "objective", "gap_frac", "solve_s", "vehicles", "kpis", "shortfalls", "shortfall_reason", "intensity_sources", "data_notes")
    class IntensitySourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    HORIZON_START_FIELD_NUMBER: _ClassVar[int]
    SLOT_MINUTES_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    GAP_FRAC_FIELD_NUMBER: _ClassVar[int]
    SOLVE_S_FIELD_NUMBER: _ClassVar[int]
    VEHICLES_FIELD_NUMBER: _ClassVar[int]
    KPIS_FIELD_NUMBER: _ClassVar[int]
    SHORTFALLS_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_REASON_FIELD_NUMBER: _ClassVar[int]
    INTENSITY_SOURCES_FIELD_NUMBER: _ClassVar[int]
    DATA_NOTES_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    revision: int
    horizon_start: _timestamp_pb2.Timestamp
    slot_minutes: int
    slots: int
    strategy: Strategy
    status: PlanStatus
    objective: float
    gap_frac: float
    solve_s: float
    vehicles: int
    kpis: Kpis
    shortfalls: _containers.RepeatedCompositeFieldContainer[VehicleShortfall]
    shortfall_reason: str
    intensity_sources: _containers.ScalarMap[str, str]
    data_notes: _containers.RepeatedCompositeFieldContainer[VehicleDataNote]
    def __init__(self, plan_id: _Optional[str] = ..., revision: _Optional[int] = ..., horizon_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., slot_minutes: _Optional[int] = ..., slots: _Optional[int] = ..., strategy: _Optional[_Union[Strategy, str]] = ..., status: _Optional[_Union[PlanStatus, str]] = ..., objective: _Optional[float] = ..., gap_frac: _Optional[float] = ..., solve_s: _Optional[float] = ..., vehicles: _Optional[int] = ..., kpis: _Optional[_Union[Kpis, _Mapping]] = ..., shortfalls: _Optional[_Iterable[_Union[VehicleShortfall, _Mapping]]] = ..., shortfall_reason: _Optional[str] = ..., intensity_sources: _Optional[_Mapping[str, str]] = ..., data_notes: _Optional[_Iterable[_Union[VehicleDataNote, _Mapping]]] = ...) -> None: ...

class JobShards(_message.Message):
    __slots__ = ("job_id", "shards")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    shards: int
    def __init__(self, job_id: _Optional[str] = ..., shards: _Optional[int] = ...) -> None: ...

class PlanSlot(_message.Message):
    __slots__ = ("start", "charge_power_kw", "grid_import_kw", "compute_power_kw", "running_vehicles", "parked_vehicles", "energy_start_kwh", "work")
    START_FIELD_NUMBER: _ClassVar[int]
    CHARGE_POWER_KW_FIELD_NUMBER: _ClassVar[int]
    GRID_IMPORT_KW_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_POWER_KW_FIELD_NUMBER: _ClassVar[int]
    RUNNING_VEHICLES_FIELD_NUMBER: _ClassVar[int]
    PARKED_VEHICLES_FIELD_NUMBER: _ClassVar[int]
    ENERGY_START_KWH_FIELD_NUMBER: _ClassVar[int]
    WORK_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    charge_power_kw: float
    grid_import_kw: float
    compute_power_kw: float
    running_vehicles: int
    parked_vehicles: int
    energy_start_kwh: float
    work: _containers.RepeatedCompositeFieldContainer[JobShards]
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., charge_power_kw: _Optional[float] = ..., grid_import_kw: _Optional[float] = ..., compute_power_kw: _Optional[float] = ..., running_vehicles: _Optional[int] = ..., parked_vehicles: _Optional[int] = ..., energy_start_kwh: _Optional[float] = ..., work: _Optional[_Iterable[_Union[JobShards, _Mapping]]] = ...) -> None: ...

class PlanView(_message.Message):
    __slots__ = ("plan", "slots")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    plan: PlanSummary
    slots: _containers.RepeatedCompositeFieldContainer[PlanSlot]
    def __init__(self, plan: _Optional[_Union[PlanSummary, _Mapping]] = ..., slots: _Optional[_Iterable[_Union[PlanSlot, _Mapping]]] = ...) -> None: ...

class GetPlanRequest(_message.Message):
    __slots__ = ("site_id", "vehicle_id", "window")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    vehicle_id: str
    window: TimeWindow
    def __init__(self, site_id: _Optional[str] = ..., vehicle_id: _Optional[str] = ..., window: _Optional[_Union[TimeWindow, _Mapping]] = ...) -> None: ...

class WatchPlanRequest(_message.Message):
    __slots__ = ("site_id", "vehicle_id")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    vehicle_id: str
    def __init__(self, site_id: _Optional[str] = ..., vehicle_id: _Optional[str] = ...) -> None: ...

class GetFlexibilityRequest(_message.Message):
    __slots__ = ("site_id", "region", "window")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    region: str
    window: TimeWindow
    def __init__(self, site_id: _Optional[str] = ..., region: _Optional[str] = ..., window: _Optional[_Union[TimeWindow, _Mapping]] = ...) -> None: ...

class FlexibilitySlot(_message.Message):
    __slots__ = ("start", "baseline_import_kw", "import_cap_kw", "add_power_kw", "shed_power_kw", "parked_vehicles", "compute_capacity_shards", "planned_shards")
    START_FIELD_NUMBER: _ClassVar[int]
    BASELINE_IMPORT_KW_FIELD_NUMBER: _ClassVar[int]
    IMPORT_CAP_KW_FIELD_NUMBER: _ClassVar[int]
    ADD_POWER_KW_FIELD_NUMBER: _ClassVar[int]
    SHED_POWER_KW_FIELD_NUMBER: _ClassVar[int]
    PARKED_VEHICLES_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_CAPACITY_SHARDS_FIELD_NUMBER: _ClassVar[int]
    PLANNED_SHARDS_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    baseline_import_kw: float
    import_cap_kw: float
    add_power_kw: float
    shed_power_kw: float
    parked_vehicles: int
    compute_capacity_shards: int
    planned_shards: int
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., baseline_import_kw: _Optional[float] = ..., import_cap_kw: _Optional[float] = ..., add_power_kw: _Optional[float] = ..., shed_power_kw: _Optional[float] = ..., parked_vehicles: _Optional[int] = ..., compute_capacity_shards: _Optional[int] = ..., planned_shards: _Optional[int] = ...) -> None: ...

class Flexibility(_message.Message):
    __slots__ = ("plan", "slots")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    plan: PlanSummary
    slots: _containers.RepeatedCompositeFieldContainer[FlexibilitySlot]
    def __init__(self, plan: _Optional[_Union[PlanSummary, _Mapping]] = ..., slots: _Optional[_Iterable[_Union[FlexibilitySlot, _Mapping]]] = ...) -> None: ...

class DrEventSpec(_message.Message):
    __slots__ = ("event_id", "site_id", "region", "start", "end", "max_import_kw")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    MAX_IMPORT_KW_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    site_id: str
    region: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    max_import_kw: float
    def __init__(self, event_id: _Optional[str] = ..., site_id: _Optional[str] = ..., region: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_import_kw: _Optional[float] = ...) -> None: ...

class WhatIfJob(_message.Message):
    __slots__ = ("job_id", "shards", "replicas", "value_per_shard", "release", "deadline", "site_ids")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    VALUE_PER_SHARD_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    SITE_IDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    shards: int
    replicas: int
    value_per_shard: float
    release: _timestamp_pb2.Timestamp
    deadline: _timestamp_pb2.Timestamp
    site_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., shards: _Optional[int] = ..., replicas: _Optional[int] = ..., value_per_shard: _Optional[float] = ..., release: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., site_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ScenarioOverrides(_message.Message):
    __slots__ = ("carbon_price_per_tonne", "grid_limit_kw_by_site", "remove_vehicle_ids", "dr_events", "jobs")
    class GridLimitKwBySiteEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CARBON_PRICE_PER_TONNE_FIELD_NUMBER: _ClassVar[int]
    GRID_LIMIT_KW_BY_SITE_FIELD_NUMBER: _ClassVar[int]
    REMOVE_VEHICLE_IDS_FIELD_NUMBER: _ClassVar[int]
    DR_EVENTS_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    carbon_price_per_tonne: float
    grid_limit_kw_by_site: _containers.ScalarMap[str, float]
    remove_vehicle_ids: _containers.RepeatedScalarFieldContainer[str]
    dr_events: _containers.RepeatedCompositeFieldContainer[DrEventSpec]
    jobs: _containers.RepeatedCompositeFieldContainer[WhatIfJob]
    def __init__(self, carbon_price_per_tonne: _Optional[float] = ..., grid_limit_kw_by_site: _Optional[_Mapping[str, float]] = ..., remove_vehicle_ids: _Optional[_Iterable[str]] = ..., dr_events: _Optional[_Iterable[_Union[DrEventSpec, _Mapping]]] = ..., jobs: _Optional[_Iterable[_Union[WhatIfJob, _Mapping]]] = ...) -> None: ...

class WhatIfRequest(_message.Message):
    __slots__ = ("scenario_json", "overrides", "strategy", "time_limit_s")
    SCENARIO_JSON_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    scenario_json: str
    overrides: ScenarioOverrides
    strategy: Strategy
    time_limit_s: float
    def __init__(self, scenario_json: _Optional[str] = ..., overrides: _Optional[_Union[ScenarioOverrides, _Mapping]] = ..., strategy: _Optional[_Union[Strategy, str]] = ..., time_limit_s: _Optional[float] = ...) -> None: ...

class WhatIfResponse(_message.Message):
    __slots__ = ("plan", "scenario_json")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_JSON_FIELD_NUMBER: _ClassVar[int]
    plan: PlanSummary
    scenario_json: str
    def __init__(self, plan: _Optional[_Union[PlanSummary, _Mapping]] = ..., scenario_json: _Optional[str] = ...) -> None: ...

class GetFleetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SiteStatus(_message.Message):
    __slots__ = ("site_id", "region", "grid_limit_kw", "vehicles_parked", "vehicles_participating", "energy_kwh", "battery_kwh", "charger_kw", "dr_event_ids")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    GRID_LIMIT_KW_FIELD_NUMBER: _ClassVar[int]
    VEHICLES_PARKED_FIELD_NUMBER: _ClassVar[int]
    VEHICLES_PARTICIPATING_FIELD_NUMBER: _ClassVar[int]
    ENERGY_KWH_FIELD_NUMBER: _ClassVar[int]
    BATTERY_KWH_FIELD_NUMBER: _ClassVar[int]
    CHARGER_KW_FIELD_NUMBER: _ClassVar[int]
    DR_EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    region: str
    grid_limit_kw: float
    vehicles_parked: int
    vehicles_participating: int
    energy_kwh: float
    battery_kwh: float
    charger_kw: float
    dr_event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, site_id: _Optional[str] = ..., region: _Optional[str] = ..., grid_limit_kw: _Optional[float] = ..., vehicles_parked: _Optional[int] = ..., vehicles_participating: _Optional[int] = ..., energy_kwh: _Optional[float] = ..., battery_kwh: _Optional[float] = ..., charger_kw: _Optional[float] = ..., dr_event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class JobCounts(_message.Message):
    __slots__ = ("pending", "open", "done", "failed", "expired", "cancelled")
    PENDING_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    pending: int
    open: int
    done: int
    failed: int
    expired: int
    cancelled: int
    def __init__(self, pending: _Optional[int] = ..., open: _Optional[int] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., expired: _Optional[int] = ..., cancelled: _Optional[int] = ...) -> None: ...

class FleetStatus(_message.Message):
    __slots__ = ("as_of", "latest_telemetry", "vehicles_known", "vehicles_parked", "vehicles_participating", "sites", "jobs", "plan")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    LATEST_TELEMETRY_FIELD_NUMBER: _ClassVar[int]
    VEHICLES_KNOWN_FIELD_NUMBER: _ClassVar[int]
    VEHICLES_PARKED_FIELD_NUMBER: _ClassVar[int]
    VEHICLES_PARTICIPATING_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    as_of: _timestamp_pb2.Timestamp
    latest_telemetry: _timestamp_pb2.Timestamp
    vehicles_known: int
    vehicles_parked: int
    vehicles_participating: int
    sites: _containers.RepeatedCompositeFieldContainer[SiteStatus]
    jobs: JobCounts
    plan: PlanSummary
    def __init__(self, as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latest_telemetry: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., vehicles_known: _Optional[int] = ..., vehicles_parked: _Optional[int] = ..., vehicles_participating: _Optional[int] = ..., sites: _Optional[_Iterable[_Union[SiteStatus, _Mapping]]] = ..., jobs: _Optional[_Union[JobCounts, _Mapping]] = ..., plan: _Optional[_Union[PlanSummary, _Mapping]] = ...) -> None: ...

class SubmitDemandResponseRequest(_message.Message):
    __slots__ = ("event", "cancel")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    event: DrEventSpec
    cancel: bool
    def __init__(self, event: _Optional[_Union[DrEventSpec, _Mapping]] = ..., cancel: _Optional[bool] = ...) -> None: ...

class DemandResponseDecision(_message.Message):
    __slots__ = ("event_id", "honoured", "reason", "plan_s")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    HONOURED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PLAN_S_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    honoured: bool
    reason: str
    plan_s: float
    def __init__(self, event_id: _Optional[str] = ..., honoured: _Optional[bool] = ..., reason: _Optional[str] = ..., plan_s: _Optional[float] = ...) -> None: ...

class EnrollKeyRequest(_message.Message):
    __slots__ = ("enrollment_json",)
    ENROLLMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    enrollment_json: str
    def __init__(self, enrollment_json: _Optional[str] = ...) -> None: ...

class RevokeKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KeyEntry(_message.Message):
    __slots__ = ("key_id", "principal", "role", "enrolled_at", "revoked_at", "signing_public_key", "agreement_public_key")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    SIGNING_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    principal: str
    role: str
    enrolled_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    signing_public_key: str
    agreement_public_key: str
    def __init__(self, key_id: _Optional[str] = ..., principal: _Optional[str] = ..., role: _Optional[str] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., signing_public_key: _Optional[str] = ..., agreement_public_key: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyEntry]
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyEntry, _Mapping]]] = ...) -> None: ...

class ConsentRules(_message.Message):
    __slots__ = ("only_at_sites", "min_soc_frac", "solar_surplus_only")
    ONLY_AT_SITES_FIELD_NUMBER: _ClassVar[int]
    MIN_SOC_FRAC_FIELD_NUMBER: _ClassVar[int]
    SOLAR_SURPLUS_ONLY_FIELD_NUMBER: _ClassVar[int]
    only_at_sites: _containers.RepeatedScalarFieldContainer[str]
    min_soc_frac: float
    solar_surplus_only: bool
    def __init__(self, only_at_sites: _Optional[_Iterable[str]] = ..., min_soc_frac: _Optional[float] = ..., solar_surplus_only: _Optional[bool] = ...) -> None: ...

class GetOwnerPreferencesRequest(_message.Message):
    __slots__ = ("vehicle_id",)
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    def __init__(self, vehicle_id: _Optional[str] = ...) -> None: ...

class SetOwnerPreferencesRequest(_message.Message):
    __slots__ = ("vehicle_id", "reserve_kwh", "target_kwh", "expected_departure", "participating", "rules")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVE_KWH_FIELD_NUMBER: _ClassVar[int]
    TARGET_KWH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DEPARTURE_FIELD_NUMBER: _ClassVar[int]
    PARTICIPATING_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    reserve_kwh: float
    target_kwh: float
    expected_departure: _timestamp_pb2.Timestamp
    participating: bool
    rules: ConsentRules
    def __init__(self, vehicle_id: _Optional[str] = ..., reserve_kwh: _Optional[float] = ..., target_kwh: _Optional[float] = ..., expected_departure: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., participating: _Optional[bool] = ..., rules: _Optional[_Union[ConsentRules, _Mapping]] = ...) -> None: ...

class OwnerPreferences(_message.Message):
    __slots__ = ("vehicle_id", "reserve_kwh", "target_kwh", "expected_departure", "participating", "rules", "updated_at", "updated_by")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVE_KWH_FIELD_NUMBER: _ClassVar[int]
    TARGET_KWH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DEPARTURE_FIELD_NUMBER: _ClassVar[int]
    PARTICIPATING_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    reserve_kwh: float
    target_kwh: float
    expected_departure: _timestamp_pb2.Timestamp
    participating: bool
    rules: ConsentRules
    updated_at: _timestamp_pb2.Timestamp
    updated_by: str
    def __init__(self, vehicle_id: _Optional[str] = ..., reserve_kwh: _Optional[float] = ..., target_kwh: _Optional[float] = ..., expected_departure: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., participating: _Optional[bool] = ..., rules: _Optional[_Union[ConsentRules, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ...) -> None: ...

class VehicleRecord(_message.Message):
    __slots__ = ("vehicle_id", "battery_kwh", "charger_kw", "charge_efficiency_frac", "compute_kw", "shards_per_slot", "wear_cost_per_kwh", "accelerator", "home_site_id", "vin", "id_tokens", "evse", "retired", "updated_at")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    BATTERY_KWH_FIELD_NUMBER: _ClassVar[int]
    CHARGER_KW_FIELD_NUMBER: _ClassVar[int]
    CHARGE_EFFICIENCY_FRAC_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_KW_FIELD_NUMBER: _ClassVar[int]
    SHARDS_PER_SLOT_FIELD_NUMBER: _ClassVar[int]
    WEAR_COST_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    HOME_SITE_ID_FIELD_NUMBER: _ClassVar[int]
    VIN_FIELD_NUMBER: _ClassVar[int]
    ID_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EVSE_FIELD_NUMBER: _ClassVar[int]
    RETIRED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    battery_kwh: float
    charger_kw: float
    charge_efficiency_frac: float
    compute_kw: float
    shards_per_slot: int
    wear_cost_per_kwh: float
    accelerator: str
    home_site_id: str
    vin: str
    id_tokens: _containers.RepeatedScalarFieldContainer[str]
    evse: str
    retired: bool
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, vehicle_id: _Optional[str] = ..., battery_kwh: _Optional[float] = ..., charger_kw: _Optional[float] = ..., charge_efficiency_frac: _Optional[float] = ..., compute_kw: _Optional[float] = ..., shards_per_slot: _Optional[int] = ..., wear_cost_per_kwh: _Optional[float] = ..., accelerator: _Optional[str] = ..., home_site_id: _Optional[str] = ..., vin: _Optional[str] = ..., id_tokens: _Optional[_Iterable[str]] = ..., evse: _Optional[str] = ..., retired: _Optional[bool] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterVehicleRequest(_message.Message):
    __slots__ = ("vehicle",)
    VEHICLE_FIELD_NUMBER: _ClassVar[int]
    vehicle: VehicleRecord
    def __init__(self, vehicle: _Optional[_Union[VehicleRecord, _Mapping]] = ...) -> None: ...

class VehicleDataNote(_message.Message):
    __slots__ = ("vehicle_id", "lacks", "energy_source", "energy_age_s", "metered_since_kwh", "controllable", "measured_age_s", "preferences_age_s", "registry_age_s")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    LACKS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENERGY_AGE_S_FIELD_NUMBER: _ClassVar[int]
    METERED_SINCE_KWH_FIELD_NUMBER: _ClassVar[int]
    CONTROLLABLE_FIELD_NUMBER: _ClassVar[int]
    MEASURED_AGE_S_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_AGE_S_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_AGE_S_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    lacks: _containers.RepeatedScalarFieldContainer[str]
    energy_source: EnergySource
    energy_age_s: float
    metered_since_kwh: float
    controllable: bool
    measured_age_s: float
    preferences_age_s: float
    registry_age_s: float
    def __init__(self, vehicle_id: _Optional[str] = ..., lacks: _Optional[_Iterable[str]] = ..., energy_source: _Optional[_Union[EnergySource, str]] = ..., energy_age_s: _Optional[float] = ..., metered_since_kwh: _Optional[float] = ..., controllable: _Optional[bool] = ..., measured_age_s: _Optional[float] = ..., preferences_age_s: _Optional[float] = ..., registry_age_s: _Optional[float] = ...) -> None: ...

class ListVehiclesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class VehicleEntry(_message.Message):
    __slots__ = ("vehicle_id", "record", "data")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    record: VehicleRecord
    data: VehicleDataNote
    def __init__(self, vehicle_id: _Optional[str] = ..., record: _Optional[_Union[VehicleRecord, _Mapping]] = ..., data: _Optional[_Union[VehicleDataNote, _Mapping]] = ...) -> None: ...

class ListVehiclesResponse(_message.Message):
    __slots__ = ("vehicles", "next_page_token", "total_size", "as_of")
    VEHICLES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    vehicles: _containers.RepeatedCompositeFieldContainer[VehicleEntry]
    next_page_token: str
    total_size: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, vehicles: _Optional[_Iterable[_Union[VehicleEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
