"""The depot world the service tests share, built with the message factories: a sites file of
depots in DE, cars parked there, an intensity forecast, jobs due within two slots, done results,
and the work the service assigned as the cars' agents read it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from streams.catalog import T0
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.messages import Assignment, GridSignal, Job, Result, Telemetry, WorkItem
from streams.topics import Stream
from tests.streams.factories import grid_signal, job, result, telemetry

SLOT = timedelta(minutes=15)


def write_sites(directory: Path, site_ids: list[str]) -> Path:
    path = directory / "sites.json"
    path.write_text(
        json.dumps(
            [
                {
                    "site_id": site_id,
                    "region": "DE",
                    "timezone": "Europe/Berlin",
                    "latitude_deg": 52.5,
                    "longitude_deg": 13.4,
                    "grid_limit_kw": 50.0,
                }
                for site_id in site_ids
            ]
        )
    )
    return path


def forecast() -> GridSignal:
    """DE for two hours from T0: the first slot is the cleanest."""
    return grid_signal([100.0] + [400.0] * 7)


def parked(vehicle_id: str, site_id: str) -> Telemetry:
    """Plugged in at `site_id` since just before T0, owed 10 kWh (30 of 40) within two hours."""
    return telemetry(
        vehicle_id,
        event_time=T0 - timedelta(minutes=1),
        site_id=site_id,
        reserve_kwh=0.0,
        target_kwh=40.0,
        expected_departure=T0 + timedelta(hours=2),
    )


def short_job(job_id: str, shards: int, sites: list[str] | None = None) -> Job:
    """Due in two slots: with one shard per car and slot, two shards per car fill both."""
    return job(
        job_id,
        shards,
        submitted_at=T0 - timedelta(minutes=5),
        value_per_shard=10.0,
        deadline=T0 + 2 * SLOT,
        sites=sites,
    )


def done(assignment: Assignment, item: WorkItem) -> Result:
    """The item done five minutes into the first slot."""
    return result(assignment, item, finished_at=T0 + timedelta(minutes=5))


def assignments_at(kafka: KafkaSettings, slot_start: datetime) -> list[Assignment]:
    """The assignments of one slot on the assignments topic, as the cars' agents read them."""
    seen: list[Assignment] = []
    reader = StreamReader(
        kafka,
        None,
        [Stream.ASSIGNMENTS],
        lambda stream, message: seen.append(message),  # type: ignore[arg-type]
        None,
    ).start()
    try:
        assert reader.wait_caught_up(timeout_s=30)
    finally:
        reader.stop()
    return [assignment for assignment in seen if assignment.slot_start == slot_start]


def work_assigned(kafka: KafkaSettings, slot_start: datetime) -> list[tuple[Assignment, WorkItem]]:
    """The work items of one slot on the assignments topic, as the cars' agents read them."""
    return [(a, item) for a in assignments_at(kafka, slot_start) for item in a.work]
