"""`idlefleet agent`: the car agent (one car, or many simulated ones) on Kafka."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idlefleet.commands import EXIT_BAD_INPUT
from idlefleet.credentials import CredentialsError, credentials_from_args, state_dir
from idlefleet.credentials import add_arguments as add_identity_arguments
from idlefleet.sim.labcar import LabCar
from streams.topics import Stream

if TYPE_CHECKING:
    from executor.agent import VehicleAgent
    from streams.trust import Trust


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "agent",
        help="run car agents: take assignments, run ONNX work, report results and heartbeats",
    )
    parser.add_argument(
        "--vehicle-id",
        action="append",
        required=True,
        dest="vehicle_ids",
        help="the car (repeat for many simulated cars in one process)",
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS"),
        help="Kafka HOST:PORT (or IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS)",
    )
    parser.add_argument("--topic-prefix", default="idlefleet")
    parser.add_argument(
        "--compute-kw", type=float, default=0.3, help="battery power while computing [kW]"
    )
    parser.add_argument("--heartbeat-interval", type=float, default=5.0, help="[s] (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="shards run at once (default 2)")
    for kind in ("input", "model", "output"):
        parser.add_argument(
            f"--{kind}-root",
            action="append",
            type=Path,
            dest=f"{kind}_roots",
            metavar="DIR",
            help=f"a directory {kind}s may lie in (repeat; default: the working directory "
            "unless it is /, and the temporary directory"
            + (", and installed packages)" if kind == "model" else ")"),
        )
    parser.add_argument(
        "--spool-dir",
        type=Path,
        help="where results wait until the broker has them (default: "
        "<state dir>/spool/<first --vehicle-id>, the state dir being $IDLEFLEET_STATE_DIR, "
        "else ~/.local/state/idlefleet)",
    )
    parser.add_argument(
        "--model-cache",
        type=Path,
        help="where fetched models are kept by sha256 (default: <state dir>/models)",
    )
    parser.add_argument(
        "--model-cache-mb",
        type=float,
        default=2048.0,
        help="most space fetched models may take [MiB] (default 2048)",
    )
    lab = parser.add_argument_group("lab car (until real chargers and car telemetry are bridged)")
    lab.add_argument(
        "--lab-car",
        metavar="SITE",
        help="simulate each car parked at SITE from now: its battery follows the set-points "
        "and the agent publishes its telemetry, signed with the car's key",
    )
    lab.add_argument(
        "--lab-car-hours", type=float, default=8.0, help="how long it stays parked [h] (default 8)"
    )
    lab.add_argument(
        "--telemetry-interval", type=float, default=10.0, help="[s] between reports (default 10)"
    )
    add_identity_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from executor.agent import AgentLimits, AgentPool, LoggedCharger, VehicleAgent
    from executor.jobdata import ModelCacheConfig
    from executor.roots import StorageRoots
    from executor.runtime import OnnxRunner
    from executor.service import AgentService, wall_clock
    from idlefleet.lifecycle import stop_on_signals
    from streams.clients import KafkaSettings

    if not args.bootstrap_servers:
        print(
            "idlefleet agent: --bootstrap-servers (or IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS) "
            "is required: the agent joins the planner's Kafka",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if len(set(args.vehicle_ids)) != len(args.vehicle_ids):
        print("idlefleet agent: --vehicle-id given twice for the same car", file=sys.stderr)
        return EXIT_BAD_INPUT
    spool_dir = args.spool_dir or default_spool_dir(args.vehicle_ids[0])
    if spool_dir is None:
        print(
            f"idlefleet agent: {args.vehicle_ids[0]!r} cannot name a directory; give --spool-dir",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        credentials = credentials_from_args(args, args.vehicle_ids, "car", lab=False)
    except CredentialsError as exc:
        print(f"idlefleet agent: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    runner = OnnxRunner()
    try:
        default = StorageRoots.default()
        roots = StorageRoots(
            tuple(args.input_roots or default.input_roots),
            tuple(args.model_roots or default.model_roots),
            tuple(args.output_roots or default.output_roots),
        )
        if not args.model_cache_mb > 0:
            raise ValueError(f"--model-cache-mb must be positive, got {args.model_cache_mb}")
        model_cache = ModelCacheConfig(
            args.model_cache or state_dir() / "models", int(args.model_cache_mb * 1024 * 1024)
        )
        limits = AgentLimits(roots=roots, model_cache=model_cache)
        if args.lab_car is not None and not (
            args.lab_car_hours > 0 and args.telemetry_interval > 0
        ):
            raise ValueError("--lab-car-hours and --telemetry-interval must be positive")
        lab_cars = {
            vehicle_id: LabCar.parked(vehicle_id, args.lab_car, wall_clock, args.lab_car_hours)
            for vehicle_id in (args.vehicle_ids if args.lab_car else [])
        }
        agents = AgentPool(
            VehicleAgent(
                vehicle_id,
                runner,
                lab_cars.get(vehicle_id) or LoggedCharger(vehicle_id),
                args.compute_kw,
                wall_clock,
                limits=limits,
                identities=credentials.identities_of(vehicle_id),
            )
            for vehicle_id in args.vehicle_ids
        )
        for vehicle_id, car in lab_cars.items():
            car.compute_kw = args.compute_kw
            car.computing = computing(agents.get(vehicle_id))
        kafka = KafkaSettings(
            bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix
        )
        service = AgentService(
            kafka,
            agents,
            spool_dir=spool_dir,
            heartbeat_interval_s=args.heartbeat_interval,
            workers=args.workers,
            trust=credentials.trust(kafka),
        )
    except ValueError as exc:
        print(f"idlefleet agent: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with stop_on_signals() as stop:
        service.start()
        if lab_cars:
            reporter = threading.Thread(
                target=report_lab_cars,
                args=(list(lab_cars.values()), service.trust, args.telemetry_interval, stop),
                name="lab-car-telemetry",
                daemon=True,
            )
            reporter.start()
        print(
            f"agent for {len(agents)} car(s) on {args.bootstrap_servers}, "
            f"running on {runner.providers[0]}, results spooled in {spool_dir}",
            file=sys.stderr,
            flush=True,
        )
        stop.wait()
        service.stop()
    return 0


def computing(agent: VehicleAgent | None) -> Callable[[], bool]:
    """Whether `agent` is running work now (its lab car's battery then feeds the computer)."""
    return lambda: agent is not None and agent.running is not None


def report_lab_cars(
    cars: list[LabCar], trust: Trust | None, interval_s: float, stop: threading.Event
) -> None:
    """Publish each lab car's telemetry every `interval_s` [s] until `stop` is set."""
    if trust is None:
        return
    publisher = trust.publisher()
    try:
        while not stop.is_set():
            for car in cars:
                publisher.publish(Stream.TELEMETRY, car.telemetry())
            publisher.flush()
            stop.wait(interval_s)
    finally:
        publisher.close()


def default_spool_dir(vehicle_id: str) -> Path | None:
    """The car's result spool in the state directory (beside its identity), or None when
    `vehicle_id` is not a plain file name."""
    if vehicle_id in ("", ".", "..") or Path(vehicle_id).name != vehicle_id:
        return None
    return state_dir() / "spool" / vehicle_id
