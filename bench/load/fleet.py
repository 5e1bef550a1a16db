"""The simulated fleet and the service's inputs: depots over the regions, cars from the real
Caltech sessions, the forecasts and the base job."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import numpy as np

from bench.load.schedule import ORIGIN, SETTINGS, SLOT
from forecasting.carbon import REGIONS
from forecasting.timegrid import SlotGrid
from idlefleet.forecast_messages import forecast_messages
from idlefleet.sim.catalog import demo_sites
from idlefleet.sim.fleet import SimulatedCar, generate_fleet
from idlefleet.sites import SiteConfig
from streams.clients import KafkaSettings
from streams.messages import Job, Message, ModelRef
from streams.producer import Publisher
from streams.topics import Stream

PARKED_AT_START_FRAC = 0.9
MODEL = ModelRef(uri="file:///srv/models/embed.onnx", sha256="0" * 64)


def benchmark_sites(count: int, cars: int) -> list[SiteConfig]:
    """`count` depots shared out over the regions (DE, GB, FR; `demo_sites`), each sized for
    its cars."""
    sites: list[SiteConfig] = []
    for index, region in enumerate(REGIONS):
        share = count // len(REGIONS) + (index < count % len(REGIONS))
        if share:
            sites += demo_sites(share, -(-cars * share // count), region=region)
    return sites


def build_fleet(cars: int, sites: list[SiteConfig], seed: int) -> list[SimulatedCar]:
    """Cars from the real Caltech sessions: most parked since the slot before ORIGIN for
    their session's stay, the others arriving at their session's time of day."""
    rng = np.random.default_rng(seed)
    fleet = generate_fleet(cars, sites, ORIGIN, SETTINGS.horizon_hours, SETTINGS.slot_minutes, rng)
    parked = rng.random(cars) < PARKED_AT_START_FRAC
    return [
        dataclasses.replace(
            car, arrival=ORIGIN - SLOT, departure=ORIGIN - SLOT + (car.departure - car.arrival)
        )
        if at_start
        else car
        for car, at_start in zip(fleet, parked, strict=True)
    ]


def publish_inputs(kafka: KafkaSettings, sites: list[SiteConfig], cars: int, sim_h: float) -> None:
    """Forecasts covering the run and a planning horizon after it, and a job of a shard per car."""
    slots = math.ceil((sim_h + SETTINGS.horizon_hours) * 60 / SETTINGS.slot_minutes)
    grid = SlotGrid(ORIGIN, SETTINGS.slot_minutes, slots)
    job = Job(
        job_id="load-base",
        submitted_at=ORIGIN,
        model=MODEL,
        input_uris=[f"file:///srv/in/base/{i}.npy" for i in range(cars)],
        output_uri="file:///srv/out/base",
        value_per_shard=0.5,
        release=ORIGIN,
        deadline=ORIGIN + timedelta(hours=12),
    )
    messages: list[tuple[Stream, Message]] = [
        *forecast_messages(sites, grid, ORIGIN, None),
        (Stream.JOBS, job),
    ]
    publisher = Publisher(kafka)
    try:
        for stream, message in messages:
            publisher.publish(stream, message)
        publisher.flush()
    finally:
        publisher.close()
