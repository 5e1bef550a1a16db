"""Telemetry partitioned by site, and which sites and jobs a set of partitions covers.

Telemetry is not partitioned by its key's hash but by the car's site: every car parked at a
site reports on the site's partition, so the one service worker that owns that partition in
the consumer group sees all of the site's cars and plans the site alone. Keys stay vehicle
ids. Partitions come from CRC-32 of the id, which every process and every client library
computes alike (unlike the clients' default key partitioners, which differ).
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from streams.messages import Job, Telemetry


def stable_partition(name: str, partitions: int) -> int:
    """The partition of `name` among `partitions`, the same in every process."""
    return zlib.crc32(name.encode()) % partitions


class TelemetryRouter:
    """The partitions a vehicle's report goes to: its site's, and on a move its previous one.

    A car at a site reports on the site's partition. A car away keeps reporting on the
    partition of the site it left (a car never seen before: one picked by its id), so the
    worker that planned it sees it leave. When a car's partition changes, the report goes to
    both: the old owner sees the car go, the new one sees it come. Fleet state keeps the
    newest report per car by event time, so the second copy changes nothing else.

    The memory of each car's partition lives in this router: one router per publishing
    process (a car's gateway), for the life of the process.
    """

    def __init__(self, partitions: int) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.partitions = partitions
        self._last: dict[str, int] = {}

    def partitions_for(self, telemetry: Telemetry) -> list[int]:
        """Where to send `telemetry`: the target partition first, then the one it leaves."""
        previous = self._last.get(telemetry.vehicle_id)
        if telemetry.site_id is not None:
            target = stable_partition(telemetry.site_id, self.partitions)
        elif previous is not None:
            target = previous
        else:
            target = stable_partition(telemetry.vehicle_id, self.partitions)
        self._last[telemetry.vehicle_id] = target
        return [target] if previous in (None, target) else [target, previous]


@dataclass(frozen=True)
class SiteShards:
    """Sites and jobs mapped onto telemetry partitions.

    A worker owning some partitions plans the sites on them (`owned_sites`) and the jobs
    whose partition is among them (`job_partition`): a job belongs to one partition of the
    sites it may run at (every known site when it has no residency), chosen by its id.
    """

    site_ids: frozenset[str]
    partitions: int

    def site_partition(self, site_id: str) -> int:
        return stable_partition(site_id, self.partitions)

    def owned_sites(self, owned_partitions: Collection[int]) -> frozenset[str]:
        """The known sites whose partition is in `owned_partitions`."""
        return frozenset(s for s in self.site_ids if self.site_partition(s) in owned_partitions)

    def job_partition(self, job: Job) -> int | None:
        """The partition that owns `job`; None when it may run at no known site."""
        allowed: Iterable[str] = self.site_ids if job.sites is None else job.sites
        candidates = sorted({self.site_partition(s) for s in allowed if s in self.site_ids})
        if not candidates:
            return None
        return candidates[stable_partition(job.job_id, len(candidates))]
