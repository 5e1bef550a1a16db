"""`idlefleet flex`: how many kW a site, a region or the fleet can add or shed, slot by slot."""

from __future__ import annotations

import argparse
from typing import Any

from idlefleet.client.calls import add_view_arguments, show

PROG = "idlefleet flex"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "flex",
        help="kW the fleet can add or shed per slot, from the current plan (the API)",
        description="How far grid import can rise (add) or fall (shed) in each slot of the "
        "current plan, keeping every owner's reserve and departure target; each slot as if "
        "only it departs from the plan.",
        epilog="example:\n  idlefleet flex --site berlin-depot",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--site", help="a site id (default: the whole fleet)")
    scope.add_argument("--region", help="a grid region, e.g. DE")
    add_view_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from idlefleet.client.tables import flexibility_text

    return show(
        args,
        PROG,
        lambda client: client.flexibility(args.site, region=args.region),
        flexibility_text,
    )
