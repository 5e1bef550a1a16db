"""The `idlefleet` command line: one entry point for every role."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from idlefleet.commands import (
    agent,
    bench,
    bridge,
    broker,
    chaos,
    demo,
    doctor,
    fleet,
    flex,
    forecast,
    jobs,
    keys,
    owner,
    plan,
    report,
    scenario,
    serve,
    store,
    vehicles,
)

COMMANDS = (
    demo,
    serve,
    agent,
    keys,
    broker,
    store,
    plan,
    forecast,
    bridge,
    scenario,
    report,
    chaos,
    bench,
    jobs,
    fleet,
    flex,
    owner,
    vehicles,
    doctor,
)


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


class SlowNetworkStepFilter(logging.Filter):
    """Drops kafka-python 3's warning that one step of its network loop took over 0.1 s.

    The step is timed on the wall clock, so any thread holding the GIL meanwhile (a MILP
    being built, thousands of assignments encoded) trips it while nothing is late: the
    readers' lag, which `bench load` and `bench ingest` measure, is what shows a consumer
    falling behind. Shown with --verbose.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "blocking the event loop" not in record.getMessage()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("kafka.net.selector").addFilter(SlowNetworkStepFilter())
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
