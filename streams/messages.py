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
PublicKeyHex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
#: Where a car fetches or puts one object over plain HTTP(S): a presigned (lease-bounded)
#: URL, or a public one for reading.
HttpUrl = Annotated[str, Field(min_length=1, max_length=4000, pattern=r"^https?://")]


def _to_utc(value: datetime) -> datetime:
    """The same instant with offset zero (parsed `Z` already has it: skip the costly convert).

    ValueError (a validation error, not a crash) when the instant has no UTC datetime, as
    `0001-01-01T00:00:00+01:00` or `9999-12-31T23:59:59-01:00`.
    """
    if not value.utcoffset():
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("timestamp lies outside the years 1 to 9999 in UTC") from exc


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class Message(BaseModel):
    """Base of every payload: frozen, strict about unknown fields, versioned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_version: Literal[1] = Field(MESSAGE_VERSION, description="payload schema version")


class Telemetry(Message):
    """A vehicle's latest state. Topic `telemetry`, key `vehicle_id`."""

    vehicle_id: Identifier = Field(description="the car")
    event_time: UtcDatetime = Field(description="when the car measured this state")
    site_id: Identifier | None = Field(description="site the car is parked at; null when away")
    plugged_in: bool = Field(description="connected to a charger")
    energy_kwh: NonNegativeFloat = Field(description="energy in the battery now [kWh]")
    battery_kwh: PositiveFloat = Field(description="usable battery capacity [kWh]")
    reserve_kwh: NonNegativeFloat = Field(0.0, description="owner's floor [kWh]")
    target_kwh: NonNegativeFloat = Field(description="owner's wish at departure [kWh]")
    expected_departure: UtcDatetime | None = Field(
        None, description="owner's planned departure; null: unknown, no target this horizon"
    )
    charger_kw: NonNegativeFloat = Field(0.0, description="most grid power the car may draw [kW]")
    charge_efficiency_frac: Fraction = Field(0.92, description="battery energy per grid energy")
    compute_kw: NonNegativeFloat = Field(description="battery power while computing [kW]")
    shards_per_slot: Annotated[int, Field(ge=0, le=10_000)] = Field(
        1, description="shards the accelerator completes in one slot [count]"
    )
    wear_cost_per_kwh: NonNegativeFloat = Field(
        0.0, description="battery wear per kWh of throughput [currency/kWh]"
    )
    participating: bool = Field(True, description="owner consents to compute")
    accelerator: Annotated[str, Field(max_length=100)] = Field(
        "cpu", description="the car's AI computer, e.g. cuda, tensorrt, cpu"
    )

    @model_validator(mode="after")
    def _energies_fit_battery(self) -> Telemetry:
        most_kwh = self.battery_kwh + 1e-9
        if self.energy_kwh > most_kwh or self.reserve_kwh > most_kwh or self.target_kwh > most_kwh:
            for name in ("energy_kwh", "reserve_kwh", "target_kwh"):
                if getattr(self, name) > most_kwh:
                    raise ValueError(f"{name} exceeds battery_kwh ({self.battery_kwh})")
        return self


class MeasuredState(Message):
    """What was measured of one car, by the car, its charger or a maker's stream. Topic
    `measured-state`, key `vehicle_id`.

    Each source sends what it measures: None means "this record does not say", never zero.
    The planner keeps the newest value of each field (streams.state.VehicleSources).
    """

    vehicle_id: Identifier = Field(description="the car")
    event_time: UtcDatetime = Field(description="when this was measured")
    source: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="who measured it: car, ocpp:<station>/<evse>, fleet-telemetry, ..."
    )
    site_id: Identifier | None = Field(None, description="site the car is at; null: not said")
    away: bool | None = Field(None, description="true: at no site; null: not said")
    plugged_in: bool | None = Field(None, description="connected to a charger")
    energy_kwh: NonNegativeFloat | None = Field(None, description="energy in the battery [kWh]")
    soc_frac: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = Field(
        None, description="state of charge [0-1] (energy_kwh wins when both are given)"
    )
    session_id: Identifier | None = Field(
        None, description="the charging session (transaction) session_energy_kwh counts in"
    )
    session_energy_kwh: NonNegativeFloat | None = Field(
        None, description="grid energy metered into the car since the session began [kWh]"
    )
    power_kw: NonNegativeFloat | None = Field(None, description="charging power now [kW]")
    charge_limit_frac: Fraction | None = Field(None, description="the car's own charge limit [0-1]")
    controllable: bool | None = Field(
        None,
        description=(
            "false: the charger does not follow its profiles, so the car is taken to charge "
            "at full power; null: not said"
        ),
    )

    @model_validator(mode="after")
    def _one_place(self) -> MeasuredState:
        if self.away and self.site_id is not None:
            raise ValueError("a car away from every site has no site_id")
        if (self.session_energy_kwh is None) != (self.session_id is None):
            raise ValueError("session_energy_kwh and session_id come together")
        return self


class ConsentRules(BaseModel):
    """An owner's rules for computing, compiled to plan constraints (idlefleet.service.inputs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    only_at_sites: Annotated[list[Identifier], Field(min_length=1, max_length=20)] | None = Field(
        None, description='compute only when parked at one of these sites ("only at home")'
    )
    min_soc_frac: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = Field(
        None, description='never below this state of charge [0-1] ("never below 60 %")'
    )
    solar_surplus_only: bool = Field(
        False, description="compute only in slots when the site's PV covers its import"
    )


class OwnerPreferences(Message):
    """What an owner wants of their car. Topic `owner-preferences`, key `vehicle_id`.

    The newest by `updated_at` counts; it replaces the whole of the previous one.
    """

    vehicle_id: Identifier = Field(description="the car")
    updated_at: UtcDatetime = Field(description="when the owner set these")
    reserve_kwh: NonNegativeFloat = Field(0.0, description="owner's floor [kWh]")
    target_kwh: NonNegativeFloat | None = Field(
        None, description="owner's wish at departure [kWh]; null: the energy the car has"
    )
    expected_departure: UtcDatetime | None = Field(
        None, description="owner's planned departure; null: unknown, no target this horizon"
    )
    participating: bool = Field(True, description="owner consents to compute")
    rules: ConsentRules = Field(default_factory=ConsentRules, description="consent rules")
    updated_by: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="the API principal who set these; null: the car itself"
    )

    @model_validator(mode="after")
    def _target_over_reserve(self) -> OwnerPreferences:
        if self.target_kwh is not None and self.target_kwh < self.reserve_kwh:
            raise ValueError("target_kwh is below reserve_kwh")
        return self


class VehicleRecord(Message):
    """A car in the fleet registry: what it is and where it charges. Topic `fleet-registry`,
    key `vehicle_id` (compacted: the newest record is the car's entry)."""

    vehicle_id: Identifier = Field(description="the car")
    updated_at: UtcDatetime = Field(description="when the entry was written")
    battery_kwh: PositiveFloat = Field(description="usable battery capacity [kWh]")
    charger_kw: NonNegativeFloat = Field(description="most grid power the car may draw [kW]")
    charge_efficiency_frac: Fraction = Field(0.92, description="battery energy per grid energy")
    compute_kw: NonNegativeFloat = Field(description="battery power while computing [kW]")
    shards_per_slot: Annotated[int, Field(ge=0, le=10_000)] = Field(
        1, description="shards the accelerator completes in one slot [count]"
    )
    wear_cost_per_kwh: NonNegativeFloat = Field(
        0.0, description="battery wear per kWh of throughput [currency/kWh]"
    )
    accelerator: Annotated[str, Field(max_length=100)] = Field(
        "cpu", description="the car's AI computer, e.g. cuda, tensorrt, cpu"
    )
    home_site_id: Identifier | None = Field(None, description="the site the car lives at")
    vin: Annotated[str, Field(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")] | None = Field(
        None, description="vehicle identification number (makers' streams key by it)"
    )
    id_tokens: Annotated[list[Identifier], Field(max_length=20)] = Field(
        default_factory=list,
        description="charger idTokens or EVCCIDs that identify the car at a charging station",
    )
    evse: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:@-]{1,100}/[0-9]{1,4}$")] | None = Field(
        None, description="the EVSE the car is normally plugged into: <station_id>/<evse_id>"
    )
    retired: bool = Field(False, description="true: the car has left the fleet")


class SlotSeries(Message):
    """A value per slot on an explicit grid: slot i covers [start + i*Δ, start + (i+1)*Δ)."""

    issued_at: UtcDatetime = Field(description="when the series was made; newest wins")
    start: UtcDatetime = Field(description="start of slot 0")
    slot_minutes: Annotated[int, Field(gt=0, le=1440)] = Field(description="slot length [min]")
    source: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="model or data set behind the values"
    )


class SolarForecast(SlotSeries):
    """Mean AC PV output per slot at a site. Topic `solar-forecasts`, key `site_id`."""

    site_id: Identifier = Field(description="the site")
    pv_kw: Annotated[list[NonNegativeFloat], Field(min_length=1, max_length=10_000)] = Field(
        description="mean AC PV power over each slot [kW]"
    )


class GridSignal(SlotSeries):
    """Average (location-based) carbon intensity per slot. Topic `grid-signals`, key `region`."""

    region: Identifier = Field(description="grid region, e.g. DE, GB, FR")
    kind: Literal["forecast", "actual"] = Field(description="a forecast or measured values")
    intensity_g_per_kwh: Annotated[
        list[NonNegativeFloat], Field(min_length=1, max_length=10_000)
    ] = Field(description="average (location-based) intensity per slot [gCO2/kWh]")


class WrappedKey(BaseModel):
    """A 32-byte key only the holder of one enrolled X25519 key can unwrap (streams.sealing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: Identifier = Field(description="the enrolled key it is wrapped to")
    ephemeral_public_key: PublicKeyHex = Field(description="the wrapper's one-time X25519 key")
    sealed_key: Annotated[str, Field(pattern=r"^[0-9a-f]{120}$")] = Field(
        description="nonce, AES-256-GCM ciphertext and tag of the key, hex"
    )


def _is_local(uri: str) -> bool:
    """A plain path or `file://` URI: only a car on the same machine can read it."""
    return "://" not in uri or uri.lower().startswith("file://")


class ModelRef(BaseModel):
    """An ONNX model: where it is and the sha256 its stored bytes must have."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: Uri = Field(description="s3://, http(s)://, file:// URI or local path of the .onnx object")
    sha256: Sha256Hex = Field(description="lowercase hex sha256 of the stored bytes")
    sealed: bool = Field(
        False, description="stored sealed under the job's model key (streams.sealing)"
    )


class Job(Message):
    """Inference work: one input shard per URI. Topic `jobs`, key `job_id`."""

    job_id: Identifier = Field(description="the job; submitting it again changes nothing")
    submitted_at: UtcDatetime = Field(description="when it was submitted")
    model: ModelRef = Field(description="the ONNX model to run")
    input_uris: Annotated[list[Uri], Field(min_length=1, max_length=100_000)] = Field(
        description="one .npy array per shard (sealed under its shard key with data_key)"
    )
    input_sha256s: Annotated[list[Sha256Hex], Field(max_length=100_000)] | None = Field(
        None,
        description=(
            "sha256 of each stored input object, in shard order; required for inputs that "
            "are not local files"
        ),
    )
    output_uri: Uri = Field(description="directory or s3:// prefix the outputs go to")
    data_key: WrappedKey | None = Field(
        None,
        description=(
            "the job key, wrapped to a service key: inputs, outputs (and a sealed model) "
            "are sealed under keys derived from it; null: plaintext job data"
        ),
    )
    replicas: Annotated[int, Field(ge=1, le=16)] = Field(
        1, description="distinct cars each shard runs on (result validation)"
    )
    value_per_shard: NonNegativeFloat = Field(
        description="penalty per execution left undone [currency]"
    )
    release: UtcDatetime = Field(description="earliest start of work")
    deadline: UtcDatetime = Field(description="work must end by then")
    sites: list[Identifier] | None = Field(None, description="data residency; null: anywhere")

    @model_validator(mode="after")
    def _window_is_ordered(self) -> Job:
        if self.deadline <= self.release:
            raise ValueError("deadline must be after release")
        return self

    @model_validator(mode="after")
    def _data_is_checkable(self) -> Job:
        if self.input_sha256s is not None and len(self.input_sha256s) != len(self.input_uris):
            raise ValueError(
                f"input_sha256s has {len(self.input_sha256s)} hashes for "
                f"{len(self.input_uris)} input_uris"
            )
        if self.input_sha256s is None and not all(_is_local(uri) for uri in self.input_uris):
            raise ValueError("input_sha256s is required when inputs are not local files")
        if self.model.sealed and self.data_key is None:
            raise ValueError("a sealed model needs the job's data_key")
        return self

    @property
    def shards(self) -> int:
        return len(self.input_uris)


class WorkItem(BaseModel):
    """One shard of one job for one vehicle to run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    work_id: Identifier = Field(description="this execution; results are deduplicated by it")
    job_id: Identifier = Field(description="the job")
    shard_index: Annotated[int, Field(ge=0)] = Field(description="which input shard [index]")
    model: ModelRef = Field(description="the ONNX model to run")
    input_uri: Uri = Field(description="the shard's .npy array")
    output_uri: Uri = Field(
        description="directory to write the output to, or the object a put output becomes"
    )
    input_sha256: Sha256Hex | None = Field(None, description="sha256 of the stored input")
    model_url: HttpUrl | None = Field(
        None, description="where to GET the model until the lease ends"
    )
    input_url: HttpUrl | None = Field(
        None, description="where to GET the input until the lease ends"
    )
    output_url: HttpUrl | None = Field(
        None, description="where to PUT the output until the lease ends (then it is output_uri)"
    )
    shard_key: WrappedKey | None = Field(
        None, description="the shard's key, wrapped to the car: opens its input, seals its output"
    )
    model_key: WrappedKey | None = Field(
        None, description="the model's key, wrapped to the car (a sealed model only)"
    )


class Assignment(Message):
    """What one vehicle does in one slot. Topic `assignments`, key `vehicle_id`.

    The car charges at `charge_power_kw` for the whole slot and runs `work`; the lease on
    the work ends with the slot. Agents take only assignments a service key signed
    (streams.signing). A car may get assignments of two plans for
    one slot (a rebalance of the service's workers): it applies the newest `plan_revision`.
    """

    assignment_id: Identifier = Field(description="this assignment")
    plan_id: Identifier = Field(description="the plan it comes from")
    plan_revision: Annotated[int, Field(ge=0, le=2**63 - 1)] = Field(
        0,
        description=(
            "the plan's revision: larger for each newer plan, across all the service's "
            "workers (e.g. milliseconds since the epoch when the plan was made); an agent "
            "applies a slot's set-point only from the newest revision it has seen for that "
            "slot (of equal revisions from two plans, the first) and fails the work of older "
            "ones"
        ),
    )
    vehicle_id: Identifier = Field(description="the car")
    slot_start: UtcDatetime = Field(description="slot start")
    slot_end: UtcDatetime = Field(description="slot end; the work's lease ends here")
    charge_power_kw: NonNegativeFloat = Field(description="grid power to draw all slot [kW]")
    work: list[WorkItem] = Field(default_factory=list, description="shards to run this slot")

    @model_validator(mode="after")
    def _slot_is_ordered(self) -> Assignment:
        if self.slot_end <= self.slot_start:
            raise ValueError("slot_end must be after slot_start")
        return self


class Result(Message):
    """The outcome of one work item. Topic `results`, key `job_id`."""

    work_id: Identifier = Field(description="the execution this reports on")
    assignment_id: Identifier = Field(description="the assignment that carried it")
    job_id: Identifier = Field(description="the job")
    shard_index: Annotated[int, Field(ge=0)] = Field(description="which input shard [index]")
    vehicle_id: Identifier = Field(description="the car that ran it")
    status: Literal["done", "failed"] = Field(description="outcome")
    reason: Annotated[str, Field(max_length=1000)] | None = Field(None, description="why it failed")
    fault: Literal["work", "car"] = Field(
        "work",
        description=(
            "whose a failure is: the work's (a bad model or input, a runaway run) counts "
            "toward giving the shard up; the car's (it left, its battery is at reserve, a newer "
            "plan superseded the assignment, the agent stopped) does not"
        ),
    )
    output_uri: Uri | None = Field(None, description="where the output array is")
    output_sha256: Sha256Hex | None = Field(None, description="sha256 of the output file")
    runtime_s: NonNegativeFloat = Field(0.0, description="wall time of the whole item [s]")
    energy_kwh: NonNegativeFloat = Field(0.0, description="compute power x runtime [kWh]")
    provider: Annotated[str, Field(max_length=100)] | None = Field(
        None, description="onnxruntime execution provider that ran it"
    )
    finished_at: UtcDatetime = Field(description="when it finished")
    progress_frac: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = Field(
        None, description="share of the shard's rows done when stopped early (failed only)"
    )

    @model_validator(mode="after")
    def _done_has_output(self) -> Result:
        if self.status == "done" and (self.output_uri is None or self.output_sha256 is None):
            raise ValueError("a done result needs output_uri and output_sha256")
        if self.status == "failed" and not self.reason:
            raise ValueError("a failed result needs a reason")
        if self.status == "done" and self.progress_frac not in (None, 1.0):
            raise ValueError("a done result has progress_frac 1 or none")
        return self


class Heartbeat(Message):
    """A car agent is alive. Topic `heartbeats`, key `vehicle_id`.

    Agents send one every few seconds; the service takes work back from a car whose
    agent has been silent longer than its heartbeat timeout.
    """

    vehicle_id: Identifier = Field(description="the car")
    sent_at: UtcDatetime = Field(description="when the agent sent it")
    running: Annotated[list[Identifier], Field(max_length=1000)] = Field(
        default_factory=list, description="work_ids the agent is running now"
    )
    provider: Annotated[str, Field(max_length=100)] | None = Field(
        None, description="best onnxruntime execution provider the agent has"
    )


class DemandResponseEvent(Message):
    """A cap on grid import for a site or a region. Topic `dr-events`, key `event_id`."""

    event_id: Identifier = Field(description="the event; a later message modifies it")
    site_id: Identifier | None = Field(None, description="capped site (or region)")
    region: Identifier | None = Field(None, description="capped region (or site)")
    start: UtcDatetime = Field(description="cap starts")
    end: UtcDatetime = Field(description="cap ends")
    max_import_kw: NonNegativeFloat = Field(description="most grid import allowed [kW]")
    cancelled: bool = Field(False, description="true withdraws the event")
    created_by: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None,
        description=(
            "the API principal who made the cap (only they or an admin may change it); "
            "null: a utility feed's"
        ),
    )

    @model_validator(mode="after")
    def _one_target(self) -> DemandResponseEvent:
        if (self.site_id is None) == (self.region is None):
            raise ValueError("exactly one of site_id and region must be set")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class JobCancellation(Message):
    """A job's open work is withdrawn. Topic `job-cancellations`, key `job_id`.

    Every worker of the service reads them all (and again after a restart), so a cancelled
    job is never dispatched again, whoever holds it.
    """

    job_id: Identifier = Field(description="the job")
    cancelled_at: UtcDatetime = Field(description="when it was cancelled")
    cancelled_by: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="who asked: the API caller's principal, or the service"
    )


class Enrollment(Message):
    """A participant's public keys in the fleet registry. Topic `identities`, key `key_id`.

    Only records the fleet authority signed count (streams.registry). The topic is compacted:
    the newest record of a key id is its state; a revoked key id stays revoked.
    """

    key_id: Identifier = Field(description="derived from both public keys (streams.identity)")
    principal: Identifier = Field(description="who holds the key: a car id, a service, an adapter")
    role: Literal["car", "service", "adapter"] = Field(description="what the holder may write")
    signing_public_key: PublicKeyHex = Field(description="raw Ed25519 public key, hex")
    agreement_public_key: PublicKeyHex = Field(description="raw X25519 public key, hex")
    enrolled_at: UtcDatetime = Field(description="when an operator enrolled the key")
    revoked_at: UtcDatetime | None = Field(None, description="set: the key is revoked")
