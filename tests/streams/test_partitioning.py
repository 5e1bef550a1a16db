"""Telemetry partitioned by site; sites and jobs mapped onto the partitions a worker owns."""

from __future__ import annotations

import zlib
from datetime import timedelta

from streams.catalog import EXAMPLES, T0
from streams.messages import Job
from streams.partitioning import SiteShards, TelemetryRouter, stable_partition
from streams.topics import Stream
from tests.streams.factories import telemetry


def test_a_partition_is_crc32_of_the_id_so_every_client_agrees() -> None:
    assert stable_partition("berlin-depot", 6) == zlib.crc32(b"berlin-depot") % 6
    assert {stable_partition(f"site-{n}", 6) for n in range(100)} == set(range(6))


def test_a_car_reports_on_its_sites_partition_and_on_the_one_it_leaves() -> None:
    router = TelemetryRouter(6)
    berlin, london = stable_partition("berlin-depot", 6), stable_partition("london-depot", 6)
    at = [T0 + timedelta(minutes=minute) for minute in range(4)]
    assert router.partitions_for(telemetry(event_time=at[0])) == [berlin]
    assert router.partitions_for(telemetry(event_time=at[1], site_id="london-depot")) == [
        london,
        berlin,
    ]
    away = telemetry(event_time=at[2], site_id=None, plugged_in=False)
    assert router.partitions_for(away) == [london]  # where it was last seen
    assert router.partitions_for(away.model_copy(update={"vehicle_id": "car-new"})) == [
        stable_partition("car-new", 6)
    ]


def test_sites_and_jobs_belong_to_the_partitions_of_their_sites() -> None:
    shards = SiteShards(frozenset({"berlin-depot", "london-depot"}), 6)
    berlin, london = shards.site_partition("berlin-depot"), shards.site_partition("london-depot")
    assert berlin != london
    assert shards.owned_sites({berlin}) == {"berlin-depot"}
    assert shards.owned_sites(set(range(6))) == {"berlin-depot", "london-depot"}
    job = EXAMPLES[Stream.JOBS]
    assert isinstance(job, Job)
    assert shards.job_partition(job) in {berlin, london}
    assert shards.job_partition(job.model_copy(update={"sites": ["london-depot"]})) == london
    assert shards.job_partition(job.model_copy(update={"sites": ["paris-depot"]})) is None
