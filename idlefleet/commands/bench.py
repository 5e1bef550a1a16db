"""`idlefleet bench NAME`: run a benchmark from bench/ (each prints ratios to a baseline)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from typing import Any

import bench


def available() -> list[str]:
    """The benchmarks in bench/; modules named `_…` are pieces they share."""
    return sorted(
        module.name
        for module in pkgutil.iter_modules(bench.__path__)
        if not module.name.startswith("_")
    )


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "bench", help="run a benchmark against its in-run baseline", add_help=False
    )
    parser.add_argument("name", choices=available(), help="which benchmark")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own options")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"bench.{args.name}")
    return int(module.main(args.args) or 0)
