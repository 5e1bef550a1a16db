"""What one worker of a scaled-out service plans: its share of region caps, its part of a job.

Workers split the fleet by telemetry partition, so each plans the sites it owns. A region-wide
DR cap is cut to the worker's share of the region's grid connections, so that all workers
together stay under it; a job that may run at several sites is restricted to the worker's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from idlefleet.sites import SiteConfig
from streams.messages import DemandResponseEvent, Job


def region_cap_shares(
    events: Mapping[str, DemandResponseEvent],
    all_sites: Sequence[SiteConfig],
    my_sites: Sequence[SiteConfig],
) -> dict[str, DemandResponseEvent]:
    """Every event, with each region-wide cap cut to the share of `my_sites` in its region.

    The share is the worker's part of the region's grid connections [kW/kW]; the shares of
    all workers add up to one. A region where the worker has no site drops out.
    """
    shared: dict[str, DemandResponseEvent] = {}
    for event_id, event in events.items():
        if event.region is None:
            shared[event_id] = event
            continue
        total_kw = sum(s.grid_limit_kw for s in all_sites if s.region == event.region)
        mine_kw = sum(s.grid_limit_kw for s in my_sites if s.region == event.region)
        if mine_kw >= total_kw:
            shared[event_id] = event
        elif mine_kw > 0:
            share = mine_kw / total_kw
            shared[event_id] = event.model_copy(
                update={"max_import_kw": event.max_import_kw * share}
            )
    return shared


def resident_job(job: Job, owned_sites: Collection[str]) -> Job:
    """The job restricted to the worker's sites (its partition holds at least one)."""
    if job.sites is None:
        return job
    return job.model_copy(update={"sites": [s for s in job.sites if s in owned_sites]})
