"""`idlefleet fleet status`: sites, cars, jobs and the current plan at a glance (the API)."""

from __future__ import annotations

import argparse
from typing import Any

from idlefleet.client.calls import add_view_arguments, show

PROG = "idlefleet fleet"


def register(commands: Any) -> None:
    parser = commands.add_parser("fleet", help="the fleet at a glance, through the API")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser(
        "status",
        help="sites (import limit, cars parked and computing), jobs and the current plan",
        description="Sites (grid limit, cars parked and computing, energy), job counts and "
        "the current plan's summary, as the planner service sees them now.",
        epilog="example:\n  idlefleet fleet status --target planner.example.org:443 "
        "--tls-ca ca.pem --token-file viewer.token",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_view_arguments(status)
    status.set_defaults(handler=fleet_status)


def fleet_status(args: argparse.Namespace) -> int:
    from idlefleet.client.tables import fleet_text

    return show(args, PROG, lambda client: client.fleet_status(), fleet_text)
