"""Which site a position falls in: the nearest site within a radius of its coordinates.

Sites carry one point each (`latitude_deg`, `longitude_deg` in `idlefleet/data/sites.json`),
no polygon, so a site's geofence is a circle of `radius_m` around that point. Distances are
great-circle (haversine) on a sphere of the Earth's mean radius: within 0.5 % of the
ellipsoid, far below any geofence's slack.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final, Protocol

#: Mean Earth radius [m] (IUGG R1).
EARTH_RADIUS_M: Final = 6_371_008.8


class SitePoint(Protocol):
    """A site's identity and coordinates (`idlefleet.sites.SiteConfig` is one)."""

    @property
    def site_id(self) -> str: ...
    @property
    def latitude_deg(self) -> float: ...
    @property
    def longitude_deg(self) -> float: ...


def distance_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle distance between two points [m]; coordinates [deg]."""
    phi1, phi2 = math.radians(lat1_deg), math.radians(lat2_deg)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2_deg - lon1_deg)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def site_at(
    latitude_deg: float, longitude_deg: float, sites: Iterable[SitePoint], radius_m: float
) -> str | None:
    """The nearest site within `radius_m` [m] of the position [deg]; None: away from all.

    Ties (sites equally near) go to the smallest site_id, so the answer never depends on the
    order of `sites`.
    """
    if not radius_m >= 0:
        raise ValueError(f"radius_m must be >= 0, not {radius_m}")
    best: tuple[float, str] | None = None
    for site in sites:
        d_m = distance_m(latitude_deg, longitude_deg, site.latitude_deg, site.longitude_deg)
        if d_m <= radius_m and (best is None or (d_m, site.site_id) < best):
            best = (d_m, site.site_id)
    return None if best is None else best[1]
