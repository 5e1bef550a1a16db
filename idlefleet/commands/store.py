"""`idlefleet store`: the embedded S3-compatible store (moto) on its own, for a lab."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from idlefleet.commands import EXIT_BAD_INPUT
from idlefleet.lifecycle import stop_on_signals

EPILOG = """\
example:
  idlefleet store --port 9000
  # then, in every other terminal of the lab, paste the lines it prints:
  export IDLEFLEET_STORE_URL=s3://idlefleet IDLEFLEET_STORE_ENDPOINT=http://127.0.0.1:9000
  export IDLEFLEET_STORE_ACCESS_KEY_ID=idlefleet-lab IDLEFLEET_STORE_SECRET_ACCESS_KEY=lab-secret

The store listens on loopback only, keeps objects in memory until it stops (Ctrl-C or
SIGTERM) and checks no signature: it is for labs, never for owners' data.
"""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "store",
        help="run the embedded S3-compatible store (moto) for job data",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, help="loopback port (default: a free one)")
    parser.add_argument("--bucket", default="idlefleet", help="bucket to create (%(default)s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from executor.errors import StoreError
    from idlefleet.store.embedded import EmbeddedStore

    store = EmbeddedStore(port=args.port, bucket=args.bucket)
    with stop_on_signals() as stop:
        try:
            store.start()
        except StoreError as exc:
            print(f"idlefleet store: {exc.reason}", file=sys.stderr)
            return EXIT_BAD_INPUT
        try:
            print(
                f"export IDLEFLEET_STORE_URL={store.url} "
                f"IDLEFLEET_STORE_ENDPOINT={store.endpoint_url}",
                flush=True,
            )
            print(
                f"export IDLEFLEET_STORE_ACCESS_KEY_ID={store.access_key_id} "
                f"IDLEFLEET_STORE_SECRET_ACCESS_KEY={store.secret_access_key}",
                flush=True,
            )
            stop.wait()
        finally:
            store.stop()
    print("store stopped", file=sys.stderr)
    return 0
