"""`idlefleet demo`: the whole loop on a simulated fleet."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from idlefleet.commands import EXIT_BAD_INPUT
from idlefleet.web.runner import WebConfigError, web_config
from idlefleet.web.runner import add_arguments as web_arguments


def register(commands: Any) -> None:
    parser = commands.add_parser("demo", help="run the whole loop on a simulated fleet")
    parser.add_argument("--cars", type=int, default=20, help="number of cars (default 20)")
    parser.add_argument("--sites", type=int, default=2, help="number of sites, 1-6 (default 2)")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--date", default="2020-06-10", help="UTC start day in 2020")
    parser.add_argument("--out", default="demo-out", help="output directory (default demo-out)")
    parser.add_argument("--bootstrap-servers", help="Kafka to use instead of the embedded broker")
    parser.add_argument("--shared-data", help="full data sets (for dates outside June 2020)")
    parser.add_argument(
        "--model",
        choices=("mlp", "magika"),
        default="mlp",
        help="mlp: a small model on real EV sessions; magika: Google's pre-trained file-type "
        "classifier (from the magika wheel) on real files",
    )
    parser.add_argument(
        "--ocpp",
        action="store_true",
        help="every car charges at an OCPP 2.0.1 station of its own, connected over "
        "WebSockets to the central system; the summary compares dispatched and metered energy",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-slot progress")
    web_arguments(parser)
    parser.add_argument(
        "--slot-seconds",
        type=float,
        default=0.0,
        help="least wall time per simulated slot [s] (default 0: as fast as it goes); "
        "a few seconds let you watch the console follow the plans",
    )
    parser.add_argument(
        "--stay",
        action="store_true",
        help="after the last slot keep the service and its console running until Ctrl-C",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.slot_seconds) and args.slot_seconds >= 0):
        print(
            f"idlefleet demo: --slot-seconds must be 0 or more, got {args.slot_seconds:g}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        web = web_config(args, lab=True)  # on by default: port 8080, or any free one
    except WebConfigError as exc:
        print(f"idlefleet demo: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.stay and web is None:
        print(
            "idlefleet demo: --stay keeps the console open: not with --web-port 0", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    from idlefleet.demo.run import DemoConfig, run_demo

    config = DemoConfig(
        cars=args.cars,
        sites=args.sites,
        hours=args.hours,
        seed=args.seed,
        date=args.date,
        out_dir=Path(args.out),
        bootstrap_servers=args.bootstrap_servers,
        shared_data_dir=Path(args.shared_data) if args.shared_data else None,
        model=args.model,
        ocpp=args.ocpp,
        web=web,
        slot_wall_s=args.slot_seconds,
        stay=args.stay,
    )
    try:
        summary = run_demo(config, progress=not args.quiet)
    except ValueError as exc:  # a demo that cannot be built from these options
        print(f"idlefleet demo: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(summary.table())
    print(f"\nwritten to {config.out_dir}/summary.txt and summary.json", file=sys.stderr)
    # Physics and floors are hard; shortfall the grid forces is reported, not a failure.
    ok = summary.floors_held and all(not s.violations for s in summary.strategies)
    return 0 if ok else 1
