"""Messages for tests, built one way: the topic catalog's example with the fields a test
changes, and `publish`, which sends messages to their topics."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from streams.catalog import EXAMPLES, T0
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
from streams.signing import proof_header, signed_bytes
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


#: Where done results' outputs are written: real files the service reads back and checks.
OUTPUTS = Path(tempfile.mkdtemp(prefix="idlefleet-test-outputs-"))


def output_file(work_id: str, vehicle_id: str, value: float) -> tuple[str, str]:
    """A one-element .npy output holding `value`: its file:// URI and sha256."""
    path = OUTPUTS / f"{work_id}-{vehicle_id}.npy".replace(":", "_")
    np.save(path, np.array([value], np.float32), allow_pickle=False)
    return path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest()


def result(assignment: Assignment, item: WorkItem, status: str = "done", **changes: Any) -> Result:
    """`item`'s result from `assignment`'s car at the slot's end: done, with a real output file
    (the shard index, the same from every car), or failed, with a reason."""
    outcome: dict[str, Any] = {"reason": "failed on purpose"}
    if status == "done":
        uri, sha256 = output_file(item.work_id, assignment.vehicle_id, item.shard_index)
        outcome = {"output_uri": uri, "output_sha256": sha256}
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


class HandSigner:
    """Signs every record with one identity's Ed25519 key, whatever its role may write: what a
    rooted car (or any holder of one key) can do by hand."""

    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    def headers(
        self, stream: Stream, message: Message, key: bytes | None, value: bytes
    ) -> list[tuple[str, bytes]]:
        proof = self._identity.sign(signed_bytes(stream, key, value))
        return [proof_header(self._identity.key_id, proof)]
