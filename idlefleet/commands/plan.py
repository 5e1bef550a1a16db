"""`idlefleet plan`: a scenario-v1 file in, a plan out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from idlefleet.commands import EXIT_BAD_INPUT
from optimizer.strategy import Strategy


def register(commands: Any) -> None:
    parser = commands.add_parser("plan", help="plan a scenario-v1 JSON file")
    parser.add_argument("scenario", help="SCENARIO.json")
    parser.add_argument("--strategy", choices=[s.value for s in Strategy], default=Strategy.MILP)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--mip-gap", type=float, default=1e-4, help="relative gap (default 1e-4)")
    parser.add_argument("-o", "--output", help="PLAN.json (default: stdout)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
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
    if plan.reason:
        print(f"idlefleet plan: {plan.reason}", file=sys.stderr)
    return 0
