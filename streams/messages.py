"""Versioned message payloads, one model per topic.

Every payload is JSON with a `message_version` field, units in field names and UTC
timestamps with an explicit offset (naive timestamps are refused). Models are strict
about unknown fields so that a typo is an error, not a silently dropped value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

MESSAGE_VERSION: Literal[1] = 1

NonNegativeFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]
#: Ids name files and keys: no slashes, no leading dot.
Identifier = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_][A-Za-z0-9._:@-]*$")
]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Uri = Annotated[str, Field(min_length=1, max_length=2000)]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class Message(BaseModel):
    """Base of every payload: frozen, strict about unknown fields, versioned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_version: Literal[1] = MESSAGE_VERSION


class Telemetry(Message):
    """A vehicle's latest state. Topic `telemetry`, key `vehicle_id`."""

    vehicle_id: Identifier
    event_time: UtcDatetime
    site_id: Identifier | None = Field(description="site the car is parked at; null when away")
    plugged_in: bool
    energy_kwh: NonNegativeFloat = Field(description="energy in the battery now [kWh]")
    battery_kwh: PositiveFloat = Field(description="usable battery capacity [kWh]")
    reserve_kwh: NonNegativeFloat = Field(0.0, description="owner's floor [kWh]")
    target_kwh: NonNegativeFloat = Field(description="owner's wish at departure [kWh]")
    expected_departure: UtcDatetime | None = None
    charger_kw: NonNegativeFloat = Field(0.0, description="most grid power the car may draw [kW]")
    charge_efficiency_frac: Fraction = 0.92
    compute_kw: NonNegativeFloat = Field(description="battery power while computing [kW]")
    shards_per_slot: Annotated[int, Field(ge=0, le=10_000)] = 1
    wear_cost_per_kwh: NonNegativeFloat = 0.0
    participating: bool = Field(True, description="owner consents to compute")
    accelerator: Annotated[str, Field(max_length=100)] = "cpu"

    @model_validator(mode="after")
    def _energies_fit_battery(self) -> Telemetry:
        for name in ("energy_kwh", "reserve_kwh", "target_kwh"):
            if getattr(self, name) > self.battery_kwh + 1e-9:
                raise ValueError(f"{name} exceeds battery_kwh ({self.battery_kwh})")
        return self


class SlotSeries(Message):
    """A value per slot on an explicit grid: slot i covers [start + i*Δ, start + (i+1)*Δ)."""

    issued_at: UtcDatetime
    start: UtcDatetime
    slot_minutes: Annotated[int, Field(gt=0, le=1440)]
    source: Annotated[str, Field(min_length=1, max_length=200)]


class SolarForecast(SlotSeries):
    """Mean AC PV output per slot at a site. Topic `solar-forecasts`, key `site_id`."""

    site_id: Identifier
    pv_kw: Annotated[list[NonNegativeFloat], Field(min_length=1, max_length=10_000)]


class GridSignal(SlotSeries):
    """Average (location-based) carbon intensity per slot. Topic `grid-signals`, key `region`."""

    region: Identifier
    kind: Literal["forecast", "actual"]
    intensity_g_per_kwh: Annotated[list[NonNegativeFloat], Field(min_length=1, max_length=10_000)]


class ModelRef(BaseModel):
    """An ONNX model: where it is and the sha256 its bytes must have."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: Uri
    sha256: Sha256Hex


class Job(Message):
    """Inference work: one input shard per URI. Topic `jobs`, key `job_id`."""

    job_id: Identifier
    submitted_at: UtcDatetime
    model: ModelRef
    input_uris: Annotated[list[Uri], Field(min_length=1, max_length=100_000)]
    output_uri: Uri
    replicas: Annotated[int, Field(ge=1, le=16)] = 1
    value_per_shard: NonNegativeFloat
    release: UtcDatetime
    deadline: UtcDatetime
    sites: list[Identifier] | None = Field(None, description="data residency; null: anywhere")

    @model_validator(mode="after")
    def _window_is_ordered(self) -> Job:
        if self.deadline <= self.release:
            raise ValueError("deadline must be after release")
        return self

    @property
    def shards(self) -> int:
        return len(self.input_uris)


class WorkItem(BaseModel):
    """One shard of one job for one vehicle to run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    work_id: Identifier
    job_id: Identifier
    shard_index: Annotated[int, Field(ge=0)]
    model: ModelRef
    input_uri: Uri
    output_uri: Uri


class Assignment(Message):
    """What one vehicle does in one slot. Topic `assignments`, key `vehicle_id`.

    The car charges at `charge_power_kw` for the whole slot and runs `work`; the lease on
    the work ends with the slot.
    """

    assignment_id: Identifier
    plan_id: Identifier
    vehicle_id: Identifier
    slot_start: UtcDatetime
    slot_end: UtcDatetime
    charge_power_kw: NonNegativeFloat
    work: list[WorkItem] = Field(default_factory=list)


class Result(Message):
    """The outcome of one work item. Topic `results`, key `job_id`."""

    work_id: Identifier
    assignment_id: Identifier
    job_id: Identifier
    shard_index: Annotated[int, Field(ge=0)]
    vehicle_id: Identifier
    status: Literal["done", "failed"]
    reason: str | None = None
    output_uri: Uri | None = None
    output_sha256: Sha256Hex | None = None
    runtime_s: NonNegativeFloat = 0.0
    energy_kwh: NonNegativeFloat = Field(0.0, description="compute power x runtime [kWh]")
    provider: Annotated[str, Field(max_length=100)] | None = None
    finished_at: UtcDatetime

    @model_validator(mode="after")
    def _done_has_output(self) -> Result:
        if self.status == "done" and (self.output_uri is None or self.output_sha256 is None):
            raise ValueError("a done result needs output_uri and output_sha256")
        if self.status == "failed" and not self.reason:
            raise ValueError("a failed result needs a reason")
        return self


class DemandResponseEvent(Message):
    """A cap on grid import for a site or a region. Topic `dr-events`, key `event_id`."""

    event_id: Identifier
    site_id: Identifier | None = None
    region: Identifier | None = None
    start: UtcDatetime
    end: UtcDatetime
    max_import_kw: NonNegativeFloat
    cancelled: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> DemandResponseEvent:
        if (self.site_id is None) == (self.region is None):
            raise ValueError("exactly one of site_id and region must be set")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self
