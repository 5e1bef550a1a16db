"""`idlefleet scenario generate`: a realistic scenario-v1 day from real data."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from forecasting.regions import REGIONS
from idlefleet.commands import EXIT_BAD_INPUT


def register(commands: Any) -> None:
    parser = commands.add_parser("scenario", help="make planning scenarios")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    generate = actions.add_parser(
        "generate",
        help="a realistic scenario-v1 day: Caltech sessions, 2020 grid carbon, pvlib PV",
    )
    generate.add_argument("--cars", type=int, required=True, help="number of cars")
    generate.add_argument("--sites", type=int, required=True, help="number of depots")
    generate.add_argument("--jobs", type=int, required=True, help="number of jobs")
    generate.add_argument("--region", choices=REGIONS, required=True, help="grid region")
    generate.add_argument("--date", required=True, help="UTC day in 2020, YYYY-MM-DD")
    generate.add_argument("--seed", type=int, required=True)
    generate.add_argument("--slot-minutes", type=int, default=15, help="slot length (default 15)")
    generate.add_argument("--shared-data", help="full data sets (for dates outside June 2020)")
    generate.add_argument("-o", "--output", help="SCENARIO.json (default: stdout)")
    generate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from forecasting.carbon import IntensityCoverageError
    from idlefleet.sim.catalog import demo_sites
    from idlefleet.sim.scenarios import generate_scenario
    from optimizer import scenario_to_dict

    try:
        day = date.fromisoformat(args.date)
        if args.cars < 1 or args.jobs < 0:
            raise ValueError(f"--cars must be >= 1 and --jobs >= 0, got {args.cars}, {args.jobs}")
        if args.slot_minutes < 1 or 1440 % args.slot_minutes:
            raise ValueError(f"--slot-minutes must divide a day, got {args.slot_minutes}")
        sites = demo_sites(args.sites, args.cars, args.region)
        shared = Path(args.shared_data) if args.shared_data else None
        scenario = generate_scenario(
            args.cars, sites, args.jobs, day, args.seed, args.slot_minutes, shared
        )
    except (ValueError, FileNotFoundError, IntensityCoverageError) as exc:
        print(f"idlefleet scenario generate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    text = json.dumps(scenario_to_dict(scenario), separators=(",", ":")) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0
