"""A worker's share of region-wide DR caps and its part of a job (pure functions)."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from idlefleet.service.sharing import region_cap_shares, resident_job
from idlefleet.sites import SiteConfig
from streams.catalog import EXAMPLES, T0
from streams.messages import DemandResponseEvent, Job
from streams.topics import Stream


def site(site_id: str, region: str, grid_limit_kw: float) -> SiteConfig:
    return SiteConfig(
        site_id=site_id,
        region=region,
        timezone="Europe/Berlin",
        latitude_deg=52.5,
        longitude_deg=13.4,
        grid_limit_kw=grid_limit_kw,
    )


def cap(event_id: str, max_import_kw: float, **target: str) -> DemandResponseEvent:
    return DemandResponseEvent(
        event_id=event_id,
        start=T0,
        end=T0 + timedelta(hours=1),
        max_import_kw=max_import_kw,
        **target,
    )


SITES = [site("a", "DE", 30.0), site("b", "DE", 10.0), site("c", "GB", 20.0)]


def test_a_region_cap_is_cut_to_the_workers_share_of_the_regions_connections() -> None:
    events = {"de": cap("de", 8.0, region="DE")}
    assert region_cap_shares(events, SITES, [SITES[0]])["de"].max_import_kw == 6.0
    assert region_cap_shares(events, SITES, [SITES[1]])["de"].max_import_kw == 2.0


def test_site_caps_pass_whole_and_regions_without_a_site_of_the_worker_drop_out() -> None:
    events = {"site": cap("site", 5.0, site_id="c"), "de": cap("de", 8.0, region="DE")}
    shared = region_cap_shares(events, SITES, [SITES[2]])
    assert shared == {"site": events["site"]}


def test_a_worker_holding_every_site_of_the_region_keeps_the_whole_cap() -> None:
    events = {"de": cap("de", 8.0, region="DE")}
    assert region_cap_shares(events, SITES, SITES[:2]) == events


@given(
    limits=st.lists(st.floats(1.0, 500.0), min_size=1, max_size=6),
    cap_kw=st.floats(0.0, 1000.0),
    split=st.integers(0, 5),
)
def test_the_shares_of_all_workers_add_up_to_the_cap(
    limits: list[float], cap_kw: float, split: int
) -> None:
    sites = [site(f"s{i}", "DE", kw) for i, kw in enumerate(limits)]
    events = {"de": cap("de", cap_kw, region="DE")}
    workers = [sites[: split % len(sites)], sites[split % len(sites) :]]
    shares = [region_cap_shares(events, sites, mine).get("de") for mine in workers]
    total = sum(share.max_import_kw for share in shares if share is not None)
    assert math.isclose(total, cap_kw, rel_tol=1e-9, abs_tol=1e-9)


def test_a_job_is_restricted_to_the_workers_sites() -> None:
    example = EXAMPLES[Stream.JOBS]
    assert isinstance(example, Job)
    anywhere = example.model_copy(update={"sites": None})
    assert resident_job(anywhere, {"a"}) is anywhere
    somewhere = example.model_copy(update={"sites": ["a", "b", "c"]})
    assert resident_job(somewhere, {"c", "a"}).sites == ["a", "c"]
