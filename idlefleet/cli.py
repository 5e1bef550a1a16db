"""The `idlefleet` command line: one entry point for every role."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from idlefleet.commands import (
    agent,
    bench,
    broker,
    chaos,
    demo,
    forecast,
    plan,
    report,
    scenario,
    serve,
)

COMMANDS = (demo, serve, agent, broker, plan, forecast, scenario, report, chaos, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idlefleet",
        description="A carbon-aware inference cloud on parked electric cars.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
