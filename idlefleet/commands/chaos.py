"""`idlefleet chaos`: kill the service and agents, freeze the broker, check nothing is lost."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from idlefleet.commands import EXIT_BAD_INPUT


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "chaos",
        help="run a demo-sized day N times under SIGKILLs and a frozen broker; check the outcome",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cars", type=int, default=12)
    parser.add_argument("--sites", type=int, default=2)
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--service-kills", type=int, default=2, help="per run (default 2)")
    parser.add_argument("--agent-kills", type=int, default=2, help="per run (default 2)")
    parser.add_argument(
        "--max-freeze", type=float, default=30.0, help="longest broker freeze [s] (default 30)"
    )
    parser.add_argument("--keep", type=Path, help="keep the runs' logs in this directory")
    parser.add_argument("--progress", action="store_true", help="a line per slot")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from idlefleet.chaos.harness import ChaosConfig, run_chaos, summary_line

    if args.runs < 1 or args.max_freeze <= 0:
        print("idlefleet chaos: --runs must be >= 1 and --max-freeze > 0")
        return EXIT_BAD_INPUT
    outcomes = run_chaos(
        ChaosConfig(
            runs=args.runs,
            cars=args.cars,
            sites=args.sites,
            hours=args.hours,
            seed=args.seed,
            service_kills=args.service_kills,
            agent_kills=args.agent_kills,
            max_freeze_s=args.max_freeze,
            work_dir=args.keep,
        ),
        progress=args.progress,
    )
    print(summary_line(outcomes))
    healthy = all(o.health_went_down and o.health_came_back for o in outcomes)
    clean = not any(o.lost or o.duplicates or o.owner_violations for o in outcomes)
    return 0 if clean and healthy else 1
