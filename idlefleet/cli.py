"""The `idlefleet` command line: one entry point for every role."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from idlefleet.sites import SiteConfig

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def cmd_broker(args: argparse.Namespace) -> int:
    from streams.broker import EmbeddedBroker

    with stop_on_signals() as stop, EmbeddedBroker(port=args.port) as broker:
        print(broker.bootstrap_servers, flush=True)
        stop.wait()
    print("broker stopped", file=sys.stderr)
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from optimizer import ScenarioError, load_scenario, plan_scenario

    try:
        scenario = load_scenario(Path(args.scenario))
    except ScenarioError as exc:
        print(f"idlefleet plan: {args.scenario}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"idlefleet plan: {args.scenario}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    plan = plan_scenario(
        scenario, args.strategy, time_limit_s=args.time_limit, mip_gap_frac=args.mip_gap
    )
    text = json.dumps(plan.to_dict(), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK if plan.is_feasible else EXIT_FAILURE


def cmd_serve(args: argparse.Namespace) -> int:
    from idlefleet.service import PlannerService
    from idlefleet.settings import PlannerSettings
    from idlefleet.sites import SitesFileError, load_sites
    from streams.clients import KafkaSettings, ensure_topics

    try:
        sites = load_sites(Path(args.sites)) if args.sites else _default_sites()
    except SitesFileError as exc:
        print(f"idlefleet serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    settings = PlannerSettings(slot_minutes=args.slot_minutes)
    with stop_on_signals() as stop, _kafka(args.bootstrap_servers) as bootstrap:
        kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=args.topic_prefix)
        ensure_topics(kafka)
        service = PlannerService(kafka, settings, sites).start()
        print(f"serving on {bootstrap} (topics {args.topic_prefix}.*)", file=sys.stderr)
        try:
            _tick_every_slot(service.tick, settings.slot_minutes, stop)
        finally:
            service.stop()
    return EXIT_OK


def _tick_every_slot(
    tick: Callable[[datetime], object], slot_minutes: int, stop: threading.Event
) -> None:
    """Call `tick` at every slot boundary of the wall clock until `stop` is set."""
    slot = timedelta(minutes=slot_minutes)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    boundary = midnight + ((datetime.now(UTC) - midnight) // slot) * slot
    while not stop.is_set():
        tick(boundary)
        boundary += slot
        stop.wait(max(0.0, (boundary - datetime.now(UTC)).total_seconds()))


def _default_sites() -> list[SiteConfig]:
    from idlefleet.sites import load_sites

    with resources.as_file(resources.files("idlefleet") / "data" / "sites.json") as path:
        return load_sites(path)


@contextmanager
def _kafka(bootstrap_servers: str | None) -> Iterator[str]:
    """The given bootstrap servers, or an embedded broker for the block's lifetime."""
    if bootstrap_servers:
        yield bootstrap_servers
        return
    from streams.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        print(f"embedded broker on {broker.bootstrap_servers}", file=sys.stderr)
        yield broker.bootstrap_servers


def cmd_demo(args: argparse.Namespace) -> int:
    from idlefleet.demo import DemoConfig, run_demo

    config = DemoConfig(
        cars=args.cars,
        sites=args.sites,
        hours=args.hours,
        seed=args.seed,
        date=args.date,
        out_dir=Path(args.out),
        bootstrap_servers=args.bootstrap_servers,
        shared_data_dir=Path(args.shared_data) if args.shared_data else None,
    )
    summary = run_demo(config, progress=not args.quiet)
    print(summary.table())
    print(f"\nwritten to {config.out_dir}/summary.txt and summary.json", file=sys.stderr)
    ok = summary.owners_met == len(summary.owners) and all(
        not s.violations for s in summary.strategies
    )
    return EXIT_OK if ok else EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idlefleet",
        description="A carbon-aware inference cloud on parked electric cars.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the whole loop on a simulated fleet")
    demo.add_argument("--cars", type=int, default=20, help="number of cars (default 20)")
    demo.add_argument("--sites", type=int, default=2, help="number of sites, 1-6 (default 2)")
    demo.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--date", default="2020-06-10", help="UTC start day, in 2020 (default 2020-06-10)"
    )
    demo.add_argument("--out", default="demo-out", help="output directory (default demo-out)")
    demo.add_argument("--bootstrap-servers", help="Kafka to use instead of the embedded broker")
    demo.add_argument("--shared-data", help="full data sets (for dates outside June 2020)")
    demo.add_argument("--quiet", action="store_true", help="no per-slot progress")
    demo.set_defaults(handler=cmd_demo)

    serve = commands.add_parser("serve", help="run the planner service")
    serve.add_argument("--bootstrap-servers", help="Kafka HOST:PORT; default: embedded broker")
    serve.add_argument("--sites", help="JSON list of sites (default: the shipped example)")
    serve.add_argument("--topic-prefix", default="idlefleet")
    serve.add_argument("--slot-minutes", type=int, default=15)
    serve.set_defaults(handler=cmd_serve)

    broker = commands.add_parser("broker", help="run the embedded Kafka-compatible broker")
    broker.add_argument("--port", type=int, help="loopback port (default: a free one)")
    broker.set_defaults(handler=cmd_broker)

    plan = commands.add_parser("plan", help="plan a scenario-v1 JSON file")
    plan.add_argument("scenario", help="SCENARIO.json")
    plan.add_argument("--strategy", choices=["milp", "greedy", "immediate"], default="milp")
    plan.add_argument("--time-limit", type=float, default=60.0, help="seconds (default 60)")
    plan.add_argument("--mip-gap", type=float, default=1e-4, help="relative gap (default 1e-4)")
    plan.add_argument("-o", "--output", help="PLAN.json (default: stdout)")
    plan.set_defaults(handler=cmd_plan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
