"""`idlefleet broker`: the embedded Kafka-compatible broker on its own."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from idlefleet.lifecycle import stop_on_signals


def register(commands: Any) -> None:
    parser = commands.add_parser("broker", help="run the embedded Kafka-compatible broker")
    parser.add_argument("--port", type=int, help="loopback port (default: a free one)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from streams.broker import EmbeddedBroker

    with stop_on_signals() as stop, EmbeddedBroker(port=args.port) as broker:
        print(broker.bootstrap_servers, flush=True)
        stop.wait()
    print("broker stopped", file=sys.stderr)
    return 0
