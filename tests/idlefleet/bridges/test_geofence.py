"""The geofence: properties of distances and of the site a position falls in."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idlefleet.bridges.geofence import EARTH_RADIUS_M, distance_m, site_at

lats = st.floats(-90.0, 90.0)
lons = st.floats(-180.0, 180.0)
radii_m = st.floats(0.0, 50_000.0)


@dataclass(frozen=True)
class Site:
    site_id: str
    latitude_deg: float
    longitude_deg: float


sites = st.lists(
    st.builds(Site, st.text("abcdefgh", min_size=1, max_size=4), lats, lons), max_size=6
)


def test_berlin_to_london_is_about_930_km() -> None:
    assert distance_m(52.52, 13.405, 51.507, -0.128) == pytest.approx(931_500, rel=0.005)


@settings(max_examples=200, deadline=None)
@given(lats, lons, lats, lons)
def test_distance_is_a_symmetric_bounded_metric(a: float, b: float, c: float, d: float) -> None:
    there = distance_m(a, b, c, d)
    assert there == pytest.approx(distance_m(c, d, a, b), abs=1e-6)
    assert 0.0 <= there <= math.pi * EARTH_RADIUS_M + 1e-6
    assert distance_m(a, b, a, b) == pytest.approx(0.0, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(lats, lons, sites, radii_m)
def test_the_site_found_is_the_nearest_within_the_radius(
    lat: float, lon: float, places: list[Site], radius_m: float
) -> None:
    found = site_at(lat, lon, places, radius_m)
    nearest: dict[str, float] = {}
    for place in places:
        d_m = distance_m(lat, lon, place.latitude_deg, place.longitude_deg)
        nearest[place.site_id] = min(d_m, nearest.get(place.site_id, math.inf))
    if found is None:
        assert all(d_m > radius_m for d_m in nearest.values())
    else:
        assert nearest[found] <= radius_m
        assert nearest[found] == min(nearest.values())
    assert site_at(lat, lon, list(reversed(places)), radius_m) == found


@settings(max_examples=100, deadline=None)
@given(sites.filter(bool), radii_m)
def test_a_site_s_own_point_is_in_a_site_at_distance_zero(
    places: list[Site], radius_m: float
) -> None:
    place = places[0]
    found = site_at(place.latitude_deg, place.longitude_deg, places, radius_m)
    assert found is not None
    same_point = [
        p.site_id
        for p in places
        if distance_m(place.latitude_deg, place.longitude_deg, p.latitude_deg, p.longitude_deg)
        == 0.0
    ]
    assert found == min(same_point)


@settings(max_examples=100, deadline=None)
@given(lats, lons, st.floats(10.0, 10_000.0))
def test_a_point_due_north_is_in_or_out_by_its_distance(
    lat: float, lon: float, radius_m: float
) -> None:
    """A point `d` metres north of a site (d/R radians of latitude) is inside iff d <= r."""
    site = Site("s", max(-80.0, min(80.0, lat)), lon)
    for d_m, inside in ((0.9 * radius_m, True), (1.1 * radius_m, False)):
        north_deg = site.latitude_deg + math.degrees(d_m / EARTH_RADIUS_M)
        assert (site_at(north_deg, lon, [site], radius_m) == "s") is inside


def test_a_negative_radius_is_refused() -> None:
    with pytest.raises(ValueError, match="radius_m"):
        site_at(0.0, 0.0, [], -1.0)
