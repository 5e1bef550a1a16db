"""Scenarios of a simulated fleet: the shared builder and the generator.

`fleet_scenario` turns a slot grid, sites, simulated cars, jobs, regional intensity and site
PV into a typed scenario (`optimizer.scenario_to_dict` writes its document); the demo's
hindsight scenario and `idlefleet scenario generate` both use it. `generate_scenario` draws a
realistic day from real data: cars from the Caltech sessions (`generate_fleet`), the real
2020 intensity of the sites' regions, pvlib clear-sky PV per site, and jobs whose release
times follow the parked fleet, with a mix of deadlines, shard counts, replicas, values and
data residency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np

from forecasting.carbon import intensity_on_grid
from forecasting.solar import PvSystemSpec, clear_sky_pv_kw
from forecasting.timegrid import SlotGrid
from idlefleet.sim.fleet import SimulatedCar, generate_fleet
from idlefleet.sites import SiteConfig
from optimizer import Horizon, Job, Region, Scenario, Site, Vehicle

CARBON_PRICE_PER_TONNE = 100.0
#: Job durations (release to deadline) [h] and how often each is drawn.
JOB_HOURS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
JOB_HOURS_WEIGHTS = (0.10, 0.20, 0.15, 0.20, 0.15, 0.12, 0.08)
REPLICAS = (1, 2, 3)
REPLICAS_WEIGHTS = (0.80, 0.15, 0.05)
#: Share of jobs whose data must stay at one depot, and at the depots near one depot.
ONE_SITE_FRAC = 0.05
NEARBY_FRAC = 0.10
#: Depots closer than this to a depot are near it [km].
NEARBY_RADIUS_KM = 5.0
EARTH_RADIUS_KM = 6371.0
#: Executions asked for, as a share of the slots in which participating cars are parked.
LOAD_FRAC = 0.6
#: Median value of a shard [currency]; values are log-normal around it.
MEDIAN_VALUE_PER_SHARD = 0.08


class JobTerms(Protocol):
    """What a scenario needs to know of a job (a streams `Job` or a `JobSpec`)."""

    @property
    def job_id(self) -> str: ...
    @property
    def shards(self) -> int: ...
    @property
    def replicas(self) -> int: ...
    @property
    def value_per_shard(self) -> float: ...
    @property
    def release(self) -> datetime: ...
    @property
    def deadline(self) -> datetime: ...
    @property
    def sites(self) -> Sequence[str] | None: ...


@dataclass(frozen=True)
class JobSpec:
    """A generated job: `shards` shards, each run on `replicas` cars in `[release, deadline)`."""

    job_id: str
    shards: int
    replicas: int
    value_per_shard: float
    release: datetime
    deadline: datetime
    sites: tuple[str, ...] | None = None


def fleet_scenario(
    grid: SlotGrid,
    sites: Sequence[SiteConfig],
    fleet: Sequence[SimulatedCar],
    jobs: Sequence[JobTerms],
    intensity_g_per_kwh: Mapping[str, Sequence[float]],
    pv_kw: Mapping[str, Sequence[float]],
    carbon_price_per_tonne: float,
) -> Scenario:
    """The scenario of a simulated fleet: regions with their intensity [g/kWh] per slot, sites
    with PV [kW] per slot where given, one vehicle per car (energy at arrival as `soc_kwh`)."""
    zeros = (0.0,) * grid.slots
    return Scenario(
        horizon=Horizon(start=grid.start, slot_minutes=grid.slot_minutes, slots=grid.slots),
        carbon_price_per_tonne=carbon_price_per_tonne,
        regions=tuple(
            Region(
                id=region,
                intensity_g_per_kwh=tuple(float(x) for x in values),
                price_per_kwh=zeros,
            )
            for region, values in intensity_g_per_kwh.items()
        ),
        sites=tuple(
            Site(
                id=site.site_id,
                region=site.region,
                grid_limit_kw=site.grid_limit_kw,
                pv_kw=tuple(float(x) for x in pv_kw[site.site_id])
                if site.site_id in pv_kw
                else zeros,
            )
            for site in sites
        ),
        vehicles=tuple(
            Vehicle(
                id=car.vehicle_id,
                site=car.site.site_id,
                arrival=car.arrival,
                departure=car.departure,
                battery_kwh=car.battery_kwh,
                soc_kwh=car.arrival_energy_kwh,
                reserve_kwh=car.reserve_kwh,
                target_kwh=car.target_kwh,
                charger_kw=car.charger_kw,
                charge_efficiency_frac=car.charge_efficiency_frac,
                compute_kw=car.compute_kw,
                wear_cost_per_kwh=car.wear_cost_per_kwh,
                participating=car.participating,
            )
            for car in fleet
        ),
        jobs=tuple(
            Job(
                id=job.job_id,
                shards=job.shards,
                replicas=job.replicas,
                value_per_shard=job.value_per_shard,
                release=job.release,
                deadline=job.deadline,
                sites=None if job.sites is None else tuple(job.sites),
            )
            for job in jobs
        ),
    )


def site_pv_kw(sites: Sequence[SiteConfig], grid: SlotGrid) -> dict[str, list[float]]:
    """Clear-sky PV per site with an array [kW per slot]; pvlib runs once per distinct array."""
    profiles: dict[PvSystemSpec, list[float]] = {}
    out = {}
    for site in sites:
        system = site.pv_system()
        if system is None:
            continue
        if system not in profiles:
            profiles[system] = clear_sky_pv_kw(system, grid).tolist()
        out[site.site_id] = profiles[system]
    return out


def parked_cars(fleet: Sequence[SimulatedCar], grid: SlotGrid) -> np.ndarray:
    """Participating cars parked for the whole of each slot [count per slot]."""
    count = np.zeros(grid.slots)
    for car in fleet:
        if car.participating:
            first = (car.arrival - grid.start) // grid.slot
            last = (car.departure - grid.start) // grid.slot
            count[max(first, 0) : max(min(last, grid.slots), 0)] += 1
    return count


def generate_jobs(
    count: int,
    grid: SlotGrid,
    sites: Sequence[SiteConfig],
    parked: np.ndarray,
    rng: np.random.Generator,
) -> list[JobSpec]:
    """`count` jobs submitted while the fleet is parked, asking in total for about
    `LOAD_FRAC` of the parked slots; log-normal shard counts and values; mostly one replica;
    some with their data kept at one depot or at the depots near one."""
    if count == 0:
        return []
    weights = parked + 0.02 * max(float(parked.max()), 1.0)
    release = rng.choice(grid.slots, size=count, p=weights / weights.sum())
    hours = rng.choice(JOB_HOURS, size=count, p=JOB_HOURS_WEIGHTS)
    length = np.maximum(1, np.rint(hours * 60 / grid.slot_minutes).astype(int))
    deadline = np.minimum(release + length, grid.slots)
    replicas = rng.choice(REPLICAS, size=count, p=REPLICAS_WEIGHTS)
    size = rng.lognormal(0.0, 1.0, size=count)
    wanted = LOAD_FRAC * float(parked.sum())
    scale = wanted / float((size * replicas).sum())
    shards = np.maximum(1, np.rint(size * scale)).astype(int)
    value = np.clip(MEDIAN_VALUE_PER_SHARD * rng.lognormal(0.0, 0.8, size=count), 0.005, 2.0)
    residency = rng.random(count)
    pick = rng.integers(0, len(sites), size=count)
    nearby = NearbyDepots(sites)
    jobs = []
    for k in range(count):
        where: tuple[str, ...] | None = None
        if residency[k] < ONE_SITE_FRAC:
            where = (sites[int(pick[k])].site_id,)
        elif residency[k] < ONE_SITE_FRAC + NEARBY_FRAC:
            where = nearby.around(int(pick[k]))
        jobs.append(
            JobSpec(
                job_id=f"job-{k + 1:05d}",
                shards=int(shards[k]),
                replicas=int(replicas[k]),
                value_per_shard=round(float(value[k]), 4),
                release=grid.start + int(release[k]) * grid.slot,
                deadline=grid.start + int(deadline[k]) * grid.slot,
                sites=where,
            )
        )
    return jobs


class NearbyDepots:
    """The depots within `NEARBY_RADIUS_KM` of each depot (itself included), in site order
    (equirectangular distance, fine at this range); computed on first use per depot."""

    def __init__(self, sites: Sequence[SiteConfig]) -> None:
        self.ids = [site.site_id for site in sites]
        self.lat_rad = np.radians([site.latitude_deg for site in sites])
        self.lon_rad = np.radians([site.longitude_deg for site in sites])
        self.areas: dict[int, tuple[str, ...]] = {}

    def around(self, index: int) -> tuple[str, ...]:
        if index not in self.areas:
            mid_rad = (self.lat_rad + self.lat_rad[index]) / 2
            dx_rad = (self.lon_rad - self.lon_rad[index]) * np.cos(mid_rad)
            dy_rad = self.lat_rad - self.lat_rad[index]
            near = np.hypot(dx_rad, dy_rad) * EARTH_RADIUS_KM <= NEARBY_RADIUS_KM
            self.areas[index] = tuple(self.ids[j] for j in np.flatnonzero(near))
        return self.areas[index]


def generate_scenario(
    cars: int,
    sites: Sequence[SiteConfig],
    jobs: int,
    day: date,
    seed: int,
    slot_minutes: int = 15,
    shared_data_dir: Path | None = None,
) -> Scenario:
    """A realistic scenario day (UTC) of `cars` cars at `sites` with `jobs` jobs.

    The same arguments give the same document. Cars and jobs draw from independent streams
    of `seed`, so the fleet does not change with the number of jobs.
    """
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    grid = SlotGrid.between(start, start + timedelta(days=1), slot_minutes)
    fleet_rng, jobs_rng = np.random.default_rng(seed).spawn(2)
    fleet = generate_fleet(cars, list(sites), start, 24.0, slot_minutes, fleet_rng)
    regions = sorted({site.region for site in sites})
    intensity = {
        region: intensity_on_grid(region, grid, shared_data_dir).tolist() for region in regions
    }
    job_specs = generate_jobs(jobs, grid, sites, parked_cars(fleet, grid), jobs_rng)
    return fleet_scenario(
        grid,
        sites,
        fleet,
        job_specs,
        intensity,
        site_pv_kw(sites, grid),
        CARBON_PRICE_PER_TONNE,
    )
