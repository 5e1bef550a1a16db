"""`idlefleet owner`: a car's owner preferences through the fleet's API.

owner show --vehicle V    the car's reserve, departure wish and consent to compute
owner set --vehicle V [--reserve-kwh X] [--target-kwh X | --no-target]
          [--departure WHEN | --no-departure] [--compute | --no-compute]
          [--only-at SITE ... | --anywhere] [--min-soc F | --no-min-soc]
          [--solar-surplus-only | --no-solar-surplus-only]
                          change what is given, keep the rest (role operator, or the car's
                          owner: a token file line `TOKEN owner:V`)
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from idlefleet.client.calls import EXIT_BAD_INPUT, add_view_action, run_with_client, show

if TYPE_CHECKING:
    from idlefleet.client.fleet import FleetClient

PROG = "idlefleet owner"


def register(commands: Any) -> None:
    parser = commands.add_parser("owner", help="a car's owner preferences, through the API")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show_ = add_view_action(
        actions,
        "show",
        "the car's reserve, departure wish and consent to compute (role operator, or the "
        "car's owner)",
        "idlefleet owner show --vehicle car-7 --token-file car-7.token",
        show_preferences,
    )
    show_.add_argument("--vehicle", required=True, help="the car")
    set_ = add_view_action(
        actions,
        "set",
        "change the car's preferences: what is given replaces, the rest is kept; the "
        "service re-plans (role operator, or the car's owner)",
        "idlefleet owner set --vehicle car-7 --departure 2026-12-05T07:30:00+01:00 \\\n"
        "      --target-kwh 60 --only-at home-garage --min-soc 0.6",
        set_preferences,
    )
    set_.add_argument("--vehicle", required=True, help="the car")
    set_.add_argument("--reserve-kwh", type=float, help="floor the battery never goes below")
    target = set_.add_mutually_exclusive_group()
    target.add_argument("--target-kwh", type=float, help="energy wished for at departure")
    target.add_argument("--no-target", action="store_true", help="no wish: the energy the car has")
    departure = set_.add_mutually_exclusive_group()
    departure.add_argument(
        "--departure", metavar="WHEN", help="planned departure, ISO 8601 with offset"
    )
    departure.add_argument("--no-departure", action="store_true", help="departure unknown")
    set_.add_argument(
        "--compute",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="consent to compute on the car (--no-compute withdraws it)",
    )
    sites = set_.add_mutually_exclusive_group()
    sites.add_argument(
        "--only-at", nargs="+", metavar="SITE", help="compute only while parked at these sites"
    )
    sites.add_argument("--anywhere", action="store_true", help="compute at any site")
    soc = set_.add_mutually_exclusive_group()
    soc.add_argument(
        "--min-soc", type=float, metavar="FRAC", help="never compute below this charge [0-1]"
    )
    soc.add_argument("--no-min-soc", action="store_true", help="no such floor")
    set_.add_argument(
        "--solar-surplus-only",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compute only in slots when the site's PV covers its import",
    )


def show_preferences(args: argparse.Namespace) -> int:
    from idlefleet.client.tables import owner_text

    return show(args, PROG, lambda client: client.owner_preferences(args.vehicle), owner_text)


def parse_departure(text: str) -> datetime:
    """An ISO 8601 time with an offset, in UTC; ValueError."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (add Z or +00:00)")
    return moment.astimezone(UTC)


def changes_of(args: argparse.Namespace) -> dict[str, Any]:
    """The fields of `OwnerPreferences` the options change; ValueError for a bad --departure."""
    changes: dict[str, Any] = {}
    if args.reserve_kwh is not None:
        changes["reserve_kwh"] = args.reserve_kwh
    if args.target_kwh is not None or args.no_target:
        changes["target_kwh"] = args.target_kwh
    if args.departure is not None:
        changes["expected_departure"] = parse_departure(args.departure)
    elif args.no_departure:
        changes["expected_departure"] = None
    if args.compute is not None:
        changes["participating"] = args.compute
    if args.only_at is not None or args.anywhere:
        changes["only_at_sites"] = tuple(args.only_at or ())
    if args.min_soc is not None or args.no_min_soc:
        changes["min_soc_frac"] = args.min_soc
    if args.solar_surplus_only is not None:
        changes["solar_surplus_only"] = args.solar_surplus_only
    return changes


def set_preferences(args: argparse.Namespace) -> int:
    from idlefleet.client.tables import as_json, owner_text

    try:
        changes = changes_of(args)
    except ValueError as exc:
        print(f"{PROG}: --departure: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not changes:
        print(f"{PROG}: nothing to change: give at least one preference", file=sys.stderr)
        return EXIT_BAD_INPUT

    def action(client: FleetClient) -> int:
        stored = client.update_owner_preferences(args.vehicle, **changes)
        sys.stdout.write(as_json(stored) if args.json else owner_text(stored))
        return 0

    return run_with_client(args, PROG, action)
