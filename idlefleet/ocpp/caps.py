"""Accepted DR caps as station-wide limits: the site's cap in force, split across its stations.

A site's cap now is the lowest of the caps in force on it: its own, and its share of each
region-wide cap (the site's part of the region's grid connections [kW/kW], as the planner
shares region caps between workers). The cap is split across the site's stations in
proportion to each station's maximum power [kW], so the limits add up to at most the cap
(`profiles.cap_schedule` rounds each one down). Station limits are a backstop under the plan,
which keeps the site's whole import within the cap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from idlefleet.sites import SiteConfig
from streams.messages import DemandResponseEvent


@dataclass(frozen=True)
class SiteCap:
    """The cap on a site's import [kW] over `[start, end)`: the lowest in force at the time
    it was taken, until the first of those caps ends."""

    cap_kw: float
    start: datetime
    end: datetime


def site_caps_now(
    events: Iterable[DemandResponseEvent], sites: Sequence[SiteConfig], now: datetime
) -> dict[str, SiteCap]:
    """Per site, the cap in force at `now`; sites without one are left out."""
    region_kw: dict[str, float] = {}
    for site in sites:
        region_kw[site.region] = region_kw.get(site.region, 0.0) + site.grid_limit_kw
    in_force = [e for e in events if not e.cancelled and e.start <= now < e.end]
    caps: dict[str, SiteCap] = {}
    for site in sites:
        shares = [
            (
                e.max_import_kw
                if e.site_id == site.site_id
                else e.max_import_kw * site.grid_limit_kw / region_kw[site.region],
                e,
            )
            for e in in_force
            if e.site_id == site.site_id or (e.region is not None and e.region == site.region)
        ]
        if not shares:
            continue
        cap_kw, binding = min(shares, key=lambda share: share[0])
        caps[site.site_id] = SiteCap(cap_kw, binding.start, min(e.end for _, e in shares))
    return caps


def split_cap(cap_kw: float, station_max_kw: Mapping[str, float]) -> dict[str, float]:
    """`cap_kw` [kW] shared by stations in proportion to their maximum power [kW]."""
    total_kw = sum(station_max_kw.values())
    if total_kw <= 0:
        return {}
    return {station_id: cap_kw * max_kw / total_kw for station_id, max_kw in station_max_kw.items()}
