"""`idlefleet plan`: a scenario file in, a plan out; or `plan show`: the fleet's current plan.

plan SCENARIO.json [--strategy S] [--time-limit S] [--mip-gap F] [-o PLAN.json]
plan show [--site S | --vehicle V] [--json] [connection options]

One parser holds both: argparse cannot offer a subcommand beside a file argument, so the
first argument decides (a scenario file named `show` is `./show`), and options of the other
form are refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from idlefleet.client.calls import add_view_arguments, show
from idlefleet.client.connection import DEFAULT_TIMEOUT_S
from idlefleet.commands import EXIT_BAD_INPUT
from optimizer.strategy import Strategy

SHOW = "show"
_EPILOG = """examples:
  idlefleet plan scenario.json --strategy greedy -o plan.json   plan a scenario file here
  idlefleet plan show --site berlin-depot                        the service's current plan
"""
#: Options of each form, with the defaults that mean "not given".
_FILE_OPTIONS = {"strategy": Strategy.MILP, "time_limit": 60.0, "mip_gap": 1e-4, "output": None}
_SHOW_OPTIONS = {
    "site": None,
    "vehicle": None,
    "json": False,
    "target": None,
    "token_file": None,
    "tls_ca": None,
    "tls_cert": None,
    "tls_key": None,
    "tls_server_name": None,
    "insecure": False,
    "timeout": DEFAULT_TIMEOUT_S,
}


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "plan",
        help="plan a scenario-v1 JSON file, or `plan show` the current plan (API)",
        description="Plan a scenario-v1 JSON file here, or show the planner service's "
        "current plan of the fleet, a site or a vehicle through the API (`plan show`).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", metavar="SCENARIO.json|show", help="a scenario file, or show")
    planning = parser.add_argument_group("plan SCENARIO.json")
    planning.add_argument(
        "--strategy", choices=[s.value for s in Strategy], default=_FILE_OPTIONS["strategy"]
    )
    planning.add_argument("--time-limit", type=float, default=60.0, help="seconds (default 60)")
    planning.add_argument("--mip-gap", type=float, default=1e-4, help="relative gap (default 1e-4)")
    planning.add_argument("-o", "--output", help="PLAN.json (default: stdout)")
    showing = parser.add_argument_group("plan show")
    scope = showing.add_mutually_exclusive_group()
    scope.add_argument("--site", help="a site's plan (default: the whole fleet)")
    scope.add_argument("--vehicle", help="a vehicle's plan")
    add_view_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    showing = args.scenario == SHOW
    stray = [
        "--" + name.replace("_", "-")
        for name, default in (_FILE_OPTIONS if showing else _SHOW_OPTIONS).items()
        if getattr(args, name) != default
    ]
    if stray:
        form = "plan show" if showing else "plan SCENARIO.json"
        print(f"idlefleet plan: {', '.join(stray)}: not an option of {form}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return show_plan(args) if showing else plan_file(args)


def show_plan(args: argparse.Namespace) -> int:
    from idlefleet.client.tables import plan_text

    return show(
        args,
        "idlefleet plan show",
        lambda client: client.plan(site_id=args.site, vehicle_id=args.vehicle),
        plan_text,
    )


def plan_file(args: argparse.Namespace) -> int:
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
