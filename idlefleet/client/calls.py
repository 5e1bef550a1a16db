"""Running one client command: open the connection its options name, call, print the view,
and turn every failure into one line on stderr and an exit code (never a traceback).

Exit codes follow `idlefleet.commands`: 0 done; 1 the API refused or failed the call; 2 the
options or the request were bad (a file that cannot be read, INVALID_ARGUMENT, NOT_FOUND).
The client's gRPC modules load only when a command runs (see `connection`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from idlefleet.client.connection import (
    Connection,
    ConnectionConfigError,
    add_connection_arguments,
)

if TYPE_CHECKING:
    from idlefleet.client.fleet import FleetClient

V = TypeVar("V")

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
#: Refusals that say the request itself was wrong.
_BAD_REQUEST_CODES = frozenset({"INVALID_ARGUMENT", "NOT_FOUND"})


def add_view_arguments(parser: argparse.ArgumentParser) -> None:
    """The connection's options and `--json`."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_connection_arguments(parser)


def add_view_action(
    actions: Any, name: str, description: str, example: str, handler: Callable[..., int]
) -> argparse.ArgumentParser:
    """A sub-command parser (`jobs list`, `owner set`, ...) with the connection's options,
    `--json` and an example in its help."""
    parser: argparse.ArgumentParser = actions.add_parser(
        name,
        help=description,
        description=description,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_view_arguments(parser)
    parser.set_defaults(handler=handler)
    return parser


def run_with_client(
    args: argparse.Namespace, prog: str, action: Callable[[FleetClient], int]
) -> int:
    """`action(client)` on a client the options configure; its exit code, or 1 or 2 with one
    line on stderr when the options are bad or the API refuses."""
    from idlefleet.client.fleet import FleetClient, FleetError

    try:
        connection = Connection.from_args(args)
    except ConnectionConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with FleetClient.over(connection) as client:
        try:
            return action(client)
        except FleetError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT if exc.code in _BAD_REQUEST_CODES else EXIT_REFUSED


def show(
    args: argparse.Namespace,
    prog: str,
    fetch: Callable[[FleetClient], V],
    render: Callable[[V], str],
) -> int:
    """Fetch one view and print it as a table (or JSON with --json)."""
    from idlefleet.client.tables import as_json

    def action(client: FleetClient) -> int:
        view = fetch(client)
        sys.stdout.write(as_json(view) if args.json else render(view))
        return 0

    return run_with_client(args, prog, action)
