"""`idlefleet demo`: the whole loop on a simulated, accelerated clock.

Everything crosses the broker: the simulator publishes telemetry, forecasting publishes PV
and grid intensity, jobs are submitted, the service plans (Pyomo + HiGHS) and dispatches
assignments, car agents run the ONNX model and publish results. The clock is simulated and
advances in lock-step: a slot ends once every hop has handled it, so a day takes seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from executor.agent import AgentLimits, AgentPool, LoggedCharger, VehicleAgent
from executor.jobdata import ModelCacheConfig
from executor.objects import ObjectStore
from executor.pretrained import find_magika_model, magika_labels
from executor.roots import StorageRoots
from executor.runtime import OnnxRunner
from executor.storage import load_input_array, read_input_bytes
from forecasting.timegrid import SlotGrid
from idlefleet.client.jobdata import ServiceKey, upload_job
from idlefleet.credentials import enroll
from idlefleet.demo.console import DemoConsole, demo_console
from idlefleet.demo.summary import DemoSummary, summarise
from idlefleet.forecast_messages import forecast_messages
from idlefleet.lifecycle import bootstrap_or_embedded
from idlefleet.service.planner import PlannerService
from idlefleet.settings import PlannerSettings, StoreSettings
from idlefleet.sim.catalog import DEMO_MODELS, demo_jobs, demo_sites
from idlefleet.sim.clock import SteppedClock
from idlefleet.sim.fleet import SimulatedCar, generate_fleet
from idlefleet.store.embedded import store_or_embedded
from idlefleet.web.runner import WebConfig
from streams.clients import KafkaSettings, ensure_topics
from streams.consumer import StreamReader
from streams.identity import Authority, Identity
from streams.messages import Assignment, Job, Message, Result
from streams.producer import Publisher
from streams.topics import Stream
from streams.trust import Trust

if TYPE_CHECKING:
    from idlefleet.demo.ocpp import OcppWorld

log = logging.getLogger(__name__)

#: Largest model or input shard the demo uploads [bytes].
MAX_MODEL_BYTES = 256 * 1024 * 1024


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
    #: Where job data goes; no url: an embedded store for the run.
    store: StoreSettings = dataclasses.field(default_factory=StoreSettings)
    #: "mlp": a small model built here, on features of the real Caltech sessions;
    #: "magika": Google's pre-trained file-type classifier from its wheel, on real files.
    model: str = "mlp"
    #: Every car charges at an OCPP 2.0.1 station of its own (idlefleet.demo.ocpp).
    ocpp: bool = False
    #: Where the web console listens during the run (None: no console).
    web: WebConfig | None = None
    #: Least wall time a simulated slot takes [s]: 0 runs as fast as the loop goes; more lets
    #: a person watch the console follow the plans.
    slot_wall_s: float = 0.0
    #: Keep the service and its console running after the last slot, until Ctrl-C.
    stay: bool = False


def in_store(
    job: Job, store: ObjectStore, settings: StoreSettings, to_service: ServiceKey, seed: int
) -> Job:
    """`job` (written to local files by `demo_jobs`) with its model and shards sealed and
    put in the store, as a submitter's client does; the agents read none of the files."""
    assert settings.url is not None
    uploaded = upload_job(
        store,
        f"{settings.url}/demo-{seed}",
        job.job_id,
        read_input_bytes(job.model.uri, MAX_MODEL_BYTES),
        [load_input_array(uri, MAX_MODEL_BYTES) for uri in job.input_uris],
        service_key=to_service,
    )
    return job.model_copy(
        update={
            "model": uploaded.model,
            "input_uris": uploaded.input_uris,
            "input_sha256s": uploaded.input_sha256s,
            "output_uri": uploaded.output_uri,
            "data_key": uploaded.data_key,
        }
    )


def own_directory(directory: Path) -> AgentLimits:
    """An agent's bounds with its own directory as its only local place: it reads and
    writes nothing of the service's, and keeps the models it fetches there."""
    directory.mkdir(parents=True, exist_ok=True)
    here = (directory,)
    return AgentLimits(
        roots=StorageRoots(here, here, here),
        model_cache=ModelCacheConfig(directory / "models"),
    )


def content_types(
    results: list[Result], jobs: dict[str, Job], service: PlannerService
) -> dict[str, int]:
    """How many files Magika gave each content type, from one accepted output per shard
    (read back and opened as the service validates them)."""
    model = find_magika_model()
    counts: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    for result in results:
        if (result.job_id, result.shard_index) in seen:
            continue
        scores = service.job_data.output_of(result, jobs.get(result.job_id))
        if not isinstance(scores, np.ndarray):
            continue
        seen.add((result.job_id, result.shard_index))
        for label in magika_labels(scores, model):
            counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


@contextmanager
def kafka_for(config: DemoConfig) -> Iterator[KafkaSettings]:
    """The configured Kafka (with a fresh topic prefix), or an embedded broker."""
    prefix = f"idlefleet-demo-{int(time.time())}" if config.bootstrap_servers else "idlefleet"
    with bootstrap_or_embedded(config.bootstrap_servers) as bootstrap:
        yield KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)


def run_demo(
    config: DemoConfig,
    progress: bool = True,
    on_console: Callable[[DemoConsole], object] | None = None,
) -> DemoSummary:
    """Run the demo and write its summary to `config.out_dir`; `on_console` is called once
    the console listens."""
    started = time.perf_counter()
    start = datetime.fromisoformat(config.date).replace(tzinfo=UTC)
    end = start + timedelta(hours=config.hours)
    slots = round(config.hours * 60 / config.slot_minutes)
    grid = SlotGrid(start, config.slot_minutes, slots)
    out_dir = config.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    sites = demo_sites(config.sites, config.cars)
    fleet = generate_fleet(
        config.cars, sites, start, config.hours, config.slot_minutes, rng, stay_past_end=True
    )
    if config.model not in DEMO_MODELS:
        raise ValueError(f"model must be one of {', '.join(DEMO_MODELS)}, got {config.model!r}")
    jobs = demo_jobs(config.cars, start, end, out_dir, config.model, config.seed)
    forecasts = forecast_messages(sites, grid, start, config.shared_data_dir)
    clock = SteppedClock(start)
    settings = PlannerSettings(slot_minutes=config.slot_minutes, horizon_hours=config.hours)
    # Fresh keys for this run: an authority enrolls the service, every car and the feeds;
    # the service signs every assignment, the cars and feeds sign what they publish.
    authority = Authority.generate()
    planner = Identity.generate("planner", "service")
    world = [Identity.generate(car.vehicle_id, "car") for car in fleet]
    world += [Identity.generate("demo-feeds", "adapter")]
    # With OCPP: the central system's adapter.
    ocpp_identity = Identity.generate("ocpp", "adapter")
    chargers = None
    if config.ocpp:  # the ocpp and websockets libraries load only then
        from idlefleet.demo.ocpp import OcppWorld

        chargers = OcppWorld(fleet, timedelta(minutes=config.slot_minutes))

    with kafka_for(config) as kafka, store_or_embedded(config.store) as store_settings:
        ensure_topics(kafka)
        enroll(kafka, authority, [planner, *world, ocpp_identity])
        world_trust = Trust(kafka, authority.public_key, world).start()
        publisher = world_trust.publisher()
        store = ObjectStore(store_settings.store_config())
        # The submitter's side: each job's data sealed to the service and put in the store.
        to_service = ServiceKey(planner.key_id, planner.agreement_public_key)
        jobs = [
            (at, in_store(job, store, store_settings, to_service, config.seed)) for at, job in jobs
        ]
        planner_trust = Trust(kafka, authority.public_key, [planner])
        service = PlannerService(
            kafka,
            settings,
            sites,
            trust=planner_trust,
            store=store,
            # With OCPP the chargers' clock is the simulated one: so is the service's.
            clock=clock if chargers is not None else None,
        ).start()
        keys = {identity.principal: identity for identity in world}
        agents = AgentPool(
            VehicleAgent(
                car.vehicle_id,
                OnnxRunner(),
                # With OCPP the car's station, not its agent, sets what the car draws.
                car if chargers is None else LoggedCharger(car.vehicle_id),
                car.compute_kw,
                clock,
                charger_kw=car.charger_kw,
                limits=own_directory(out_dir / "agents" / car.vehicle_id),
                identities=(keys[car.vehicle_id],),
            )
            for car in fleet
        )
        cars = {car.vehicle_id: car for car in fleet}

        def run_assignment(stream: Stream, message: Message) -> None:
            assert isinstance(message, Assignment)
            results = agents.handle(message)
            if chargers is not None:
                chargers.dispatched(message)
            if any(result.status == "done" for result in results):  # it ran, so it drew
                cars[message.vehicle_id].compute_slots.add(message.slot_start)
            for result in results:
                publisher.publish(Stream.RESULTS, result)

        # A replica reader, not a group member: a slot's work may take longer than a group
        # member may go without polling, and every simulated car is in this one process.
        agent_reader = StreamReader(
            kafka, None, [Stream.ASSIGNMENTS], run_assignment, None, rules=world_trust.rules()
        ).start()
        # The console's writes (owners' preferences, jobs) are the service's, signed so.
        console_publisher = planner_trust.publisher()
        try:
            for stream, message in forecasts:
                publisher.publish(stream, message)
            with contextlib.ExitStack() as stack:
                console = stack.enter_context(
                    demo_console(
                        config.web,
                        service,
                        kafka,
                        console_publisher,
                        clock,
                        store_settings,
                        out_dir,
                        [car.vehicle_id for car in fleet],
                    )
                )
                if console is not None and on_console is not None:
                    on_console(console)
                if chargers is not None:  # an admin registers the cars through the service
                    chargers.publish_registry(
                        Trust(kafka, authority.public_key, [planner]).publisher(), start
                    )
                    adapter_trust = Trust(kafka, authority.public_key, [ocpp_identity]).start()
                    stack.enter_context(
                        chargers.running(service, kafka, adapter_trust, out_dir, start)
                    )
                _run_slots(
                    grid,
                    fleet,
                    jobs,
                    publisher,
                    service,
                    agents,
                    agent_reader,
                    clock,
                    progress,
                    chargers,
                    config.slot_wall_s,
                )
                if config.stay and console is not None:
                    print(
                        f"the run is over; the console stays on {console.url} until Ctrl-C",
                        file=sys.stderr,
                        flush=True,
                    )
                    with contextlib.suppress(KeyboardInterrupt):
                        while True:
                            time.sleep(3600)
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
            if chargers is not None:
                summary = dataclasses.replace(summary, ocpp=chargers.summary())
            if config.model == "magika":
                by_id = {job.job_id: job for _, job in jobs}
                summary = dataclasses.replace(
                    summary,
                    content_types=content_types(service.accepted_results, by_id, service),
                )
        finally:
            agent_reader.stop()
            service.stop()
            publisher.close()
            console_publisher.close()
            world_trust.stop()
    summary.write(out_dir)
    return summary


def _run_slots(
    grid: SlotGrid,
    fleet: list[SimulatedCar],
    jobs: list[tuple[datetime, Job]],
    publisher: Publisher,
    service: PlannerService,
    agents: AgentPool,
    agent_reader: StreamReader,
    clock: SteppedClock,
    progress: bool,
    chargers: OcppWorld | None = None,
    slot_wall_s: float = 0.0,
) -> None:
    """Step the world slot by slot, each taking at least `slot_wall_s` of wall time [s].
    Without `chargers` each car reports version-1 telemetry and charges as its agent is
    told; with them its station meters and its profiles rule."""
    pending_jobs = sorted(jobs, key=lambda pair: pair[0])
    for slot in range(grid.slots + 1):
        slot_began_s = time.monotonic()
        now = grid.slot_start(slot) if slot < grid.slots else grid.end
        clock.now = now
        for car in fleet:
            telemetry = car.telemetry(now)
            if telemetry is not None:
                if chargers is None:
                    publisher.publish(Stream.TELEMETRY, telemetry)
                agent = agents.get(car.vehicle_id)
                if agent is not None:  # what the car's own agent reads of its car
                    agent.observe(telemetry)
        if chargers is not None:
            chargers.before_plan(now, slot, publisher)
        while pending_jobs and pending_jobs[0][0] <= now:
            publisher.publish(Stream.JOBS, pending_jobs.pop(0)[1])
        publisher.flush()
        if chargers is not None and not chargers.settle():
            log.warning("OCPP measurements not bridged at slot %s", now.isoformat())
        if slot == grid.slots:
            service.catch_up()
            break
        report = service.tick(now)
        if chargers is not None and not chargers.settle():
            log.warning("OCPP profiles not acknowledged at slot %s", now.isoformat())
        if not agent_reader.wait_caught_up(timeout_s=60):
            log.warning("agents did not catch up with slot %s", now.isoformat())
        publisher.flush()
        if chargers is not None:
            chargers.draw(now)
        for car in fleet:
            car.advance(now, now + timedelta(minutes=grid.slot_minutes))
        if chargers is not None:
            chargers.after_slot()
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
        time.sleep(max(0.0, slot_wall_s - (time.monotonic() - slot_began_s)))
