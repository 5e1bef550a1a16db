"""`idlefleet vehicles`: the fleet registry's cars through the fleet's API.

vehicles list             every car the service knows: its entry and what its data lacks
vehicles register --vehicle V --battery-kwh B --charger-kw C --compute-kw K [...]
                          write the car's registry entry, replacing its previous one
                          (role admin)
"""

from __future__ import annotations

import argparse
from typing import Any

from idlefleet.client.calls import add_view_action, show

PROG = "idlefleet vehicles"


def register(commands: Any) -> None:
    parser = commands.add_parser("vehicles", help="the fleet registry's cars, through the API")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_view_action(
        actions,
        "list",
        "every car the service knows: its registry entry, how its energy is known and what "
        "its data lacks",
        "idlefleet vehicles list",
        list_vehicles,
    )
    entry = add_view_action(
        actions,
        "register",
        "write a car's fleet registry entry (what it is, where it charges), replacing its "
        "previous one; the service re-plans with it (role admin)",
        "idlefleet vehicles register --vehicle car-7 --battery-kwh 75 --charger-kw 11 \\\n"
        "      --compute-kw 0.3 --home-site berlin-depot --evse depot-cs-7/1",
        register_vehicle,
    )
    entry.add_argument("--vehicle", required=True, help="the car")
    entry.add_argument("--battery-kwh", type=float, required=True, help="usable capacity")
    entry.add_argument("--charger-kw", type=float, required=True, help="most grid power")
    entry.add_argument("--compute-kw", type=float, required=True, help="power while computing")
    entry.add_argument(
        "--charge-efficiency", type=float, default=0.92, help="battery per grid energy"
    )
    entry.add_argument("--shards-per-slot", type=_count, default=1, help="(default 1)")
    entry.add_argument("--wear-cost-per-kwh", type=float, default=0.0, help="(default 0)")
    entry.add_argument("--accelerator", default="cpu", help="cuda, tensorrt, cpu (default)")
    entry.add_argument("--home-site", help="the site the car lives at")
    entry.add_argument("--vin", help="vehicle identification number")
    entry.add_argument(
        "--id-token", nargs="+", default=[], metavar="TOKEN", help="charger idTokens or EVCCIDs"
    )
    entry.add_argument("--evse", metavar="STATION/EVSE", help="where it is normally plugged in")
    entry.add_argument("--retired", action="store_true", help="the car has left the fleet")


def _count(text: str) -> int:
    """A whole number >= 0 (argparse's type)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def list_vehicles(args: argparse.Namespace) -> int:
    from idlefleet.client.tables import vehicles_text

    return show(args, PROG, lambda client: client.list_vehicles(), vehicles_text)


def register_vehicle(args: argparse.Namespace) -> int:
    from idlefleet.client.fleet import VehicleRecord
    from idlefleet.client.tables import vehicle_text

    record = VehicleRecord(
        vehicle_id=args.vehicle,
        battery_kwh=args.battery_kwh,
        charger_kw=args.charger_kw,
        compute_kw=args.compute_kw,
        charge_efficiency_frac=args.charge_efficiency,
        shards_per_slot=args.shards_per_slot,
        wear_cost_per_kwh=args.wear_cost_per_kwh,
        accelerator=args.accelerator,
        home_site_id=args.home_site,
        vin=args.vin,
        id_tokens=tuple(args.id_token),
        evse=args.evse,
        retired=args.retired,
    )
    return show(args, PROG, lambda client: client.register_vehicle(record), vehicle_text)
