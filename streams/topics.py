"""Topic names, their keys and the message each one carries."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from streams.messages import (
    Assignment,
    DemandResponseEvent,
    Enrollment,
    GridSignal,
    Heartbeat,
    Job,
    JobCancellation,
    MeasuredState,
    Message,
    OwnerPreferences,
    Result,
    SolarForecast,
    Telemetry,
    VehicleRecord,
)


class Stream(StrEnum):
    """Logical streams; the topic name is `<prefix>.<value>`."""

    TELEMETRY = "telemetry"
    MEASURED_STATE = "measured-state"
    OWNER_PREFERENCES = "owner-preferences"
    FLEET_REGISTRY = "fleet-registry"
    SOLAR_FORECASTS = "solar-forecasts"
    GRID_SIGNALS = "grid-signals"
    JOBS = "jobs"
    JOB_CANCELLATIONS = "job-cancellations"
    ASSIGNMENTS = "assignments"
    RESULTS = "results"
    DR_EVENTS = "dr-events"
    HEARTBEATS = "heartbeats"
    IDENTITIES = "identities"
    DEAD_LETTER = "dead-letter"


@dataclass(frozen=True)
class StreamSpec:
    """What a stream carries and which field keys it."""

    message_type: type[Message] | None
    key_field: str | None
    partitions: int
    compacted: bool = False  # keep the newest record per key, not a time window


STREAM_SPECS: dict[Stream, StreamSpec] = {
    Stream.TELEMETRY: StreamSpec(Telemetry, "vehicle_id", 6),
    Stream.MEASURED_STATE: StreamSpec(MeasuredState, "vehicle_id", 6),
    Stream.OWNER_PREFERENCES: StreamSpec(OwnerPreferences, "vehicle_id", 3, compacted=True),
    Stream.FLEET_REGISTRY: StreamSpec(VehicleRecord, "vehicle_id", 3, compacted=True),
    Stream.SOLAR_FORECASTS: StreamSpec(SolarForecast, "site_id", 3),
    Stream.GRID_SIGNALS: StreamSpec(GridSignal, "region", 3),
    Stream.JOBS: StreamSpec(Job, "job_id", 3),
    Stream.JOB_CANCELLATIONS: StreamSpec(JobCancellation, "job_id", 3, compacted=True),
    Stream.ASSIGNMENTS: StreamSpec(Assignment, "vehicle_id", 6),
    Stream.RESULTS: StreamSpec(Result, "job_id", 3),
    Stream.DR_EVENTS: StreamSpec(DemandResponseEvent, "event_id", 1),
    Stream.HEARTBEATS: StreamSpec(Heartbeat, "vehicle_id", 6),
    Stream.IDENTITIES: StreamSpec(Enrollment, "key_id", 1, compacted=True),
    Stream.DEAD_LETTER: StreamSpec(None, None, 1),
}


@dataclass(frozen=True)
class Topics:
    """Resolves logical streams to topic names under a configurable prefix."""

    prefix: str = "idlefleet"

    def __post_init__(self) -> None:
        if not self.prefix or self.prefix.endswith("."):
            raise ValueError(f"topic prefix must be non-empty, no trailing dot: {self.prefix!r}")

    def name(self, stream: Stream) -> str:
        return f"{self.prefix}.{stream.value}"

    def stream_of(self, topic: str) -> Stream:
        """The logical stream of a topic name; KeyError for a foreign topic."""
        head = f"{self.prefix}."
        if not topic.startswith(head):
            raise KeyError(topic)
        return Stream(topic[len(head) :])

    def all_names(self) -> list[str]:
        return [self.name(stream) for stream in Stream]
