"""`idlefleet demo`: the whole loop on a simulated, accelerated clock.

Everything crosses the broker: the simulator publishes telemetry, forecasting publishes PV
and grid intensity, jobs are submitted, the service plans (Pyomo + HiGHS) and dispatches
assignments, car agents run the ONNX model and publish results. The clock is simulated and
advances in lock-step: a slot ends once every hop has handled it, so a day takes seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import secrets
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from pydantic import SecretStr

from executor.agent import AgentPool, VehicleAgent
from executor.demo_model import build_demo_model
from executor.pretrained import find_magika_model, magika_features, magika_labels
from executor.runtime import OnnxRunner
from executor.storage import load_input_array
from forecasting.timegrid import SlotGrid
from idlefleet.forecasts import forecast_messages as site_forecast_messages
from idlefleet.runtime import bootstrap_or_embedded
from idlefleet.service import PlannerService
from idlefleet.settings import PlannerSettings
from idlefleet.simulator import SimulatedCar, generate_fleet, load_sessions
from idlefleet.sites import SiteConfig
from idlefleet.summary import DemoSummary, summarise
from streams.clients import KafkaSettings, ensure_topics
from streams.consumer import StreamReader
from streams.messages import Assignment, Job, Message, ModelRef, Result
from streams.producer import Publisher
from streams.topics import Stream

log = logging.getLogger(__name__)

#: Depots in the three regions with real carbon data (city-centre coordinates).
SITE_CATALOG = (
    ("berlin-depot", "DE", "Europe/Berlin", 52.520, 13.405, 34.0),
    ("london-depot", "GB", "Europe/London", 51.507, -0.128, 11.0),
    ("paris-depot", "FR", "Europe/Paris", 48.857, 2.352, 35.0),
    ("munich-depot", "DE", "Europe/Berlin", 48.137, 11.575, 519.0),
    ("manchester-depot", "GB", "Europe/London", 53.481, -2.242, 38.0),
    ("lyon-depot", "FR", "Europe/Paris", 45.764, 4.836, 173.0),
)


@dataclass(frozen=True)
class DemoConfig:
    cars: int = 20
    sites: int = 2
    hours: float = 24.0
    seed: int = 7
    date: str = "2020-06-10"
    slot_minutes: int = 15
    out_dir: Path = Path("demo-out")
    bootstrap_servers: str | None = None
    shared_data_dir: Path | None = None
    #: "mlp": a small model built here, on features of the real Caltech sessions;
    #: "magika": Google's pre-trained file-type classifier from its wheel, on real files.
    model: str = "mlp"


DEMO_MODELS = ("mlp", "magika")
#: Files the Magika demo labels: this Python's standard library, many kinds of content.
MAGIKA_FILES = 954


#: Depots of one city sit on a ring of districts this far from its centre [deg of latitude].
DISTRICT_RING_DEG = 0.08
DISTRICTS = 8


def demo_sites(count: int, cars: int, region: str | None = None) -> list[SiteConfig]:
    """`count` sites, each sized for its share of the cars.

    Without `region`: the first `count` depots of the catalog (1..6). With `region`: `count`
    numbered depots (`berlin-depot-0001`, ...) in the districts around the region's cities,
    taken in turn.
    """
    if region is None and not 1 <= count <= len(SITE_CATALOG):
        raise ValueError(f"--sites must be 1..{len(SITE_CATALOG)}, got {count}")
    if count < 1:
        raise ValueError(f"--sites must be at least 1, got {count}")
    per_site = max(1, -(-cars // count))
    cities = [entry for entry in SITE_CATALOG if region is None or entry[1] == region]
    if not cities:
        regions = sorted({entry[1] for entry in SITE_CATALOG})
        raise ValueError(f"--region must be one of {', '.join(regions)}, got {region!r}")
    places = []
    for number in range(count):
        site_id, site_region, zone, lat, lon, alt = cities[number % len(cities)]
        if region is not None:
            turn = 2 * math.pi * ((number // len(cities)) % DISTRICTS) / DISTRICTS
            site_id = f"{site_id}-{number + 1:04d}"
            lon += DISTRICT_RING_DEG * math.sin(turn) / math.cos(math.radians(lat))
            lat += DISTRICT_RING_DEG * math.cos(turn)
        places.append((site_id, site_region, zone, round(lat, 4), round(lon, 4), alt))
    return [
        SiteConfig(
            site_id=site_id,
            region=site_region,
            timezone=zone,
            latitude_deg=lat,
            longitude_deg=lon,
            altitude_m=alt,
            # Half the cars may charge at full power at once: the connection binds.
            grid_limit_kw=max(22.0, 11.0 * per_site * 0.5),
            pv_dc_peak_kw=round(3.0 * per_site, 1),
        )
        for site_id, site_region, zone, lat, lon, alt in places
    ]


def demo_jobs(
    cars: int, start: datetime, end: datetime, out_dir: Path, model: str = "mlp", seed: int = 7
) -> list[tuple[datetime, Job]]:
    """Inference jobs on real input, with submit times (`model` as in `DemoConfig`)."""
    ref, features = magika_inputs(seed) if model == "magika" else mlp_inputs(out_dir)
    kind = "file-types" if model == "magika" else "embeddings"
    specs = (
        (f"session-{kind}", 4 * cars, 1, start, start, end),
        (
            f"validated-{kind}",
            cars,
            2,
            start,
            start + (end - start) / 4,
            end - (end - start) / 4,
        ),
        (f"late-{kind}", cars, 1, start + (end - start) / 2, start + (end - start) / 2, end),
    )
    jobs = []
    for job_id, shards, replicas, submitted, release, deadline in specs:
        input_dir = out_dir / "inputs" / job_id
        input_dir.mkdir(parents=True, exist_ok=True)
        uris = []
        for index, chunk in enumerate(np.array_split(features, shards)):
            path = input_dir / f"shard-{index:04d}.npy"
            np.save(path, chunk, allow_pickle=False)
            uris.append(path.resolve().as_uri())
        output_dir = out_dir / "outputs" / job_id
        output_dir.mkdir(parents=True, exist_ok=True)
        jobs.append(
            (
                submitted,
                Job(
                    job_id=job_id,
                    submitted_at=submitted,
                    model=ref,
                    input_uris=uris,
                    output_uri=output_dir.resolve().as_uri(),
                    replicas=replicas,
                    value_per_shard=0.5,
                    release=release,
                    deadline=deadline,
                ),
            )
        )
    return jobs


def mlp_inputs(out_dir: Path) -> tuple[ModelRef, np.ndarray]:
    """The demo MLP (written under `out_dir`) and features of the real Caltech sessions."""
    model_path = out_dir / "models" / "demo-mlp.onnx"
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_bytes = build_demo_model()
    model_path.write_bytes(model_bytes)
    ref = ModelRef(
        uri=model_path.resolve().as_uri(), sha256=hashlib.sha256(model_bytes).hexdigest()
    )
    sessions = load_sessions()
    features = np.array(
        [
            [s.arrival_local_hour / 24, s.weekday / 6, s.plugged_hours / 24, s.energy_kwh / 60]
            for s in sessions
        ],
        dtype=np.float32,
    )
    return ref, features


def magika_inputs(seed: int) -> tuple[ModelRef, np.ndarray]:
    """Magika's model as its wheel ships it, and its features of real files: a seeded draw
    from this Python's standard library (sources, data, certificates, scripts...)."""
    model = find_magika_model()
    files = sorted(
        path
        for path in Path(sysconfig.get_paths()["stdlib"]).rglob("*")
        if path.is_file() and path.suffix != ".pyc" and "__pycache__" not in path.parts
    )
    chosen = np.random.default_rng(seed).choice(len(files), MAGIKA_FILES, replace=False)
    features = np.stack([magika_features(files[i].read_bytes(), model) for i in sorted(chosen)])
    return ModelRef(uri=model.path.as_uri(), sha256=model.sha256), features


def content_types(results: list[Result]) -> dict[str, int]:
    """How many files Magika gave each content type, from one accepted output per shard."""
    model = find_magika_model()
    counts: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    for result in results:
        if result.output_uri is None or (result.job_id, result.shard_index) in seen:
            continue
        seen.add((result.job_id, result.shard_index))
        scores = load_input_array(result.output_uri, 64 * 1024 * 1024)
        for label in magika_labels(scores, model):
            counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def forecast_messages(
    sites: list[SiteConfig], grid: SlotGrid, issued_at: datetime, data_dir: Path | None
) -> list[tuple[Stream, Message]]:
    """Clear-sky PV per site (pvlib) and the day-ahead intensity forecast per region.

    The forecast uses only intensity before the demo starts; the summary scores the day
    on the actual series (`summarise(..., data_dir=...)`).
    """
    return site_forecast_messages(sites, grid, issued_at, data_dir)


class SimClock:
    """The demo's simulated time, set by the driver [UTC]."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def kafka_for(config: DemoConfig) -> Iterator[KafkaSettings]:
    """The configured Kafka (with a fresh topic prefix), or an embedded broker."""
    prefix = f"idlefleet-demo-{int(time.time())}" if config.bootstrap_servers else "idlefleet"
    with bootstrap_or_embedded(config.bootstrap_servers) as bootstrap:
        yield KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)


def run_demo(config: DemoConfig, progress: bool = True) -> DemoSummary:
    """Run the demo and write its summary to `config.out_dir`."""
    started = time.perf_counter()
    start = datetime.fromisoformat(config.date).replace(tzinfo=UTC)
    end = start + timedelta(hours=config.hours)
    slots = round(config.hours * 60 / config.slot_minutes)
    grid = SlotGrid(start, config.slot_minutes, slots)
    out_dir = config.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    sites = demo_sites(config.sites, config.cars)
    fleet = generate_fleet(config.cars, sites, start, config.hours, config.slot_minutes, rng)
    if config.model not in DEMO_MODELS:
        raise ValueError(f"model must be one of {', '.join(DEMO_MODELS)}, got {config.model!r}")
    jobs = demo_jobs(config.cars, start, end, out_dir, config.model, config.seed)
    forecasts = forecast_messages(sites, grid, start, config.shared_data_dir)
    clock = SimClock(start)
    # A fresh fleet key: the service signs every assignment, the agents refuse unsigned ones.
    fleet_key = secrets.token_bytes(32)
    settings = PlannerSettings(
        slot_minutes=config.slot_minutes,
        horizon_hours=config.hours,
        fleet_key=SecretStr(fleet_key.hex()),
    )

    with kafka_for(config) as kafka:
        ensure_topics(kafka)
        publisher = Publisher(kafka)
        service = PlannerService(kafka, settings, sites).start()
        agents = AgentPool(
            VehicleAgent(
                car.vehicle_id,
                OnnxRunner(),
                car,
                car.compute_kw,
                clock,
                fleet_key=fleet_key.hex().encode(),
            )
            for car in fleet
        )
        cars = {car.vehicle_id: car for car in fleet}

        def run_assignment(stream: Stream, message: Message) -> None:
            assert isinstance(message, Assignment)
            results = agents.handle(message)
            if message.work:
                cars[message.vehicle_id].compute_slots.add(message.slot_start)
            for result in results:
                publisher.publish(Stream.RESULTS, result)

        # A replica reader, not a group member: a slot's work may take longer than a group
        # member may go without polling, and every simulated car is in this one process.
        agent_reader = StreamReader(kafka, None, [Stream.ASSIGNMENTS], run_assignment, None).start()
        try:
            for stream, message in forecasts:
                publisher.publish(stream, message)
            _run_slots(grid, fleet, jobs, publisher, service, agent_reader, clock, progress)
            summary = summarise(
                grid,
                sites,
                fleet,
                [job for _, job in jobs],
                service,
                forecasts,
                elapsed_s=time.perf_counter() - started,
                data_dir=config.shared_data_dir,
            )
            if config.model == "magika":
                summary = dataclasses.replace(
                    summary, content_types=content_types(service.accepted_results)
                )
        finally:
            agent_reader.stop()
            service.stop()
            publisher.close()
    summary.write(out_dir)
    return summary


def _run_slots(
    grid: SlotGrid,
    fleet: list[SimulatedCar],
    jobs: list[tuple[datetime, Job]],
    publisher: Publisher,
    service: PlannerService,
    agent_reader: StreamReader,
    clock: SimClock,
    progress: bool,
) -> None:
    pending_jobs = sorted(jobs, key=lambda pair: pair[0])
    for slot in range(grid.slots + 1):
        now = grid.slot_start(slot) if slot < grid.slots else grid.end
        clock.now = now
        for car in fleet:
            telemetry = car.telemetry(now)
            if telemetry is not None:
                publisher.publish(Stream.TELEMETRY, telemetry)
        while pending_jobs and pending_jobs[0][0] <= now:
            publisher.publish(Stream.JOBS, pending_jobs.pop(0)[1])
        publisher.flush()
        if slot == grid.slots:
            service.catch_up()
            break
        report = service.tick(now)
        if not agent_reader.wait_caught_up(timeout_s=60):
            log.warning("agents did not catch up with slot %s", now.isoformat())
        publisher.flush()
        for car in fleet:
            car.advance(now, now + timedelta(minutes=grid.slot_minutes))
        if progress:
            planned = ""
            if report.replanned is not None:
                r = report.replanned
                planned = f"  re-planned ({','.join(r.reasons)}): {r.status} in {r.solve_s:.2f} s"
            print(
                f"[{slot + 1:3d}/{grid.slots}] {now:%Y-%m-%d %H:%M}Z"
                f"  parked={report.assignments:3d}"
                f"  work={report.work_items:3d}  done={service.results_accepted:4d}{planned}",
                file=sys.stderr,
                flush=True,
            )
