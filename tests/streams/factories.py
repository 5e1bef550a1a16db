"""Messages for tests, built one way: the topic catalog's example with the fields a test
changes, and `publish`, which sends messages to their topics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from streams.catalog import EXAMPLES, SHA256_EXAMPLE, T0
from streams.clients import KafkaSettings
from streams.identity import Authority, Identity, Role
from streams.messages import (
    Assignment,
    DemandResponseEvent,
    GridSignal,
    Job,
    Message,
    Result,
    SolarForecast,
    Telemetry,
    WorkItem,
)
from streams.producer import Publisher, Signer
from streams.topics import STREAM_SPECS, Stream
from streams.trust import Trust, publish_enrollments


def telemetry(vehicle_id: str = "car-001", **changes: Any) -> Telemetry:
    """The catalog's telemetry (parked and plugged in at berlin-depot at T0) for `vehicle_id`."""
    fields = EXAMPLES[Stream.TELEMETRY].model_dump()
    fields.update(vehicle_id=vehicle_id, **changes)
    return Telemetry.model_validate(fields)


def job(job_id: str = "embed-1", shards: int = 4, **changes: Any) -> Job:
    """The catalog's job as `job_id`: `shards` inputs under file:///srv/in/JOB_ID/, each run
    once unless `replicas` says otherwise."""
    fields = EXAMPLES[Stream.JOBS].model_dump()
    fields.update(
        job_id=job_id,
        input_uris=[f"file:///srv/in/{job_id}/{index}.npy" for index in range(shards)],
        output_uri=f"file:///srv/out/{job_id}",
        replicas=1,
    )
    fields.update(changes)
    return Job.model_validate(fields)


def grid_signal(
    intensity_g_per_kwh: Sequence[float],
    *,
    region: str = "DE",
    start: datetime = T0,
    issued_at: datetime | None = None,
) -> GridSignal:
    """A forecast of 15-minute slots from `start`, issued then unless `issued_at` says."""
    return GridSignal(
        region=region,
        issued_at=start if issued_at is None else issued_at,
        start=start,
        slot_minutes=15,
        kind="forecast",
        source="test",
        intensity_g_per_kwh=list(intensity_g_per_kwh),
    )


def solar_forecast(
    pv_kw: Sequence[float],
    *,
    site_id: str = "berlin-depot",
    start: datetime = T0,
    issued_at: datetime | None = None,
) -> SolarForecast:
    """PV of 15-minute slots from `start`, issued then unless `issued_at` says."""
    return SolarForecast(
        site_id=site_id,
        issued_at=start if issued_at is None else issued_at,
        start=start,
        slot_minutes=15,
        source="test",
        pv_kw=list(pv_kw),
    )


def dr_event(event_id: str = "evt-1", **changes: Any) -> DemandResponseEvent:
    """The catalog's cap (40 kW at berlin-depot from T0 for two hours) as `event_id`."""
    fields = EXAMPLES[Stream.DR_EVENTS].model_dump()
    fields.update(event_id=event_id, **changes)
    return DemandResponseEvent.model_validate(fields)


def result(assignment: Assignment, item: WorkItem, status: str = "done", **changes: Any) -> Result:
    """`item`'s result from `assignment`'s car at the slot's end: done, with an output file in
    the item's output directory, or failed, with a reason."""
    outcome: dict[str, Any] = (
        {"output_uri": f"{item.output_uri}/{item.shard_index}.npy", "output_sha256": SHA256_EXAMPLE}
        if status == "done"
        else {"reason": "failed on purpose"}
    )
    fields: dict[str, Any] = {
        "work_id": item.work_id,
        "assignment_id": assignment.assignment_id,
        "job_id": item.job_id,
        "shard_index": item.shard_index,
        "vehicle_id": assignment.vehicle_id,
        "status": status,
        "finished_at": assignment.slot_end,
        **outcome,
    }
    fields.update(changes)
    return Result.model_validate(fields)


def publish(
    kafka: KafkaSettings, messages: Iterable[Message], signer: Signer | None = None
) -> None:
    """Send each message to its stream's topic and wait until the broker has them all."""
    stream_of = {spec.message_type: stream for stream, spec in STREAM_SPECS.items()}
    publisher = Publisher(kafka, signer)
    try:
        for message in messages:
            publisher.publish(stream_of[type(message)], message)
        publisher.flush()
    finally:
        publisher.close()


class World:
    """A fleet authority and enrolled identities on a broker: whoever a test plays signs.

    `holders` maps principals to roles; `feeds` (an adapter) is always there, for
    forecasts, grid signals, jobs and DR events.
    """

    def __init__(self, kafka: KafkaSettings, holders: dict[str, Role]) -> None:
        self.kafka = kafka
        self.authority = Authority.generate()
        self.identities = {
            name: Identity.generate(name, role)
            for name, role in {**holders, "feeds": "adapter"}.items()
        }
        publish_enrollments(
            kafka, self.authority, [i.enrollment(T0) for i in self.identities.values()]
        )
        self._trusts: list[Trust] = []

    def trust(self, *principals: str) -> Trust:
        """A (not yet started) Trust holding the keys of `principals`."""
        trust = Trust(
            self.kafka, self.authority.public_key, [self.identities[p] for p in principals]
        )
        self._trusts.append(trust)
        return trust

    def publish(self, messages: Iterable[Message], *principals: str) -> None:
        """Publish signed by `principals` (default: every car and the feeds)."""
        names = principals or tuple(
            name for name, i in self.identities.items() if i.role in ("car", "adapter")
        )
        trust = self.trust(*names).start()
        publish(self.kafka, messages, trust.signer)

    def stop(self) -> None:
        for trust in self._trusts:
            trust.stop()
