"""The embedded store's child process: moto's S3 server on a loopback port.

Run by `EmbeddedStore` as `python -m idlefleet.store.server --port N --bucket B
--parent-pid P`. It binds the port (0: any free one), creates the bucket with a signed
CreateBucket request to itself (boto3, which moto depends on: obstore cannot create
buckets), then prints one line, `ready PORT`, on stdout. It serves until SIGTERM or SIGINT,
or until its parent is gone (it watches the parent's pid), so it never outlives its parent.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from types import FrameType

#: How often the child looks whether its parent is still there [s].
PARENT_CHECK_S = 0.5
LOOPBACK = "127.0.0.1"
#: Credentials the embedded store is addressed with; moto checks no signature, so they
#: grant nothing a loopback client could not do anyway.
LAB_ACCESS_KEY_ID = "idlefleet-lab"
LAB_SECRET_ACCESS_KEY = "lab-secret"
LAB_REGION = "us-east-1"


def _watch_parent(parent_pid: int, stop: threading.Event) -> None:
    while not stop.wait(PARENT_CHECK_S):
        if os.getppid() != parent_pid:
            os._exit(0)  # orphaned: the parent died without stopping us


def _create_bucket(port: int, bucket: str) -> None:
    import boto3  # a dependency of moto

    client = boto3.client(
        "s3",
        endpoint_url=f"http://{LOOPBACK}:{port}",
        aws_access_key_id=LAB_ACCESS_KEY_ID,
        aws_secret_access_key=LAB_SECRET_ACCESS_KEY,
        region_name=LAB_REGION,
    )
    client.create_bucket(Bucket=bucket)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m idlefleet.store.server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    threading.Thread(
        target=_watch_parent, args=(args.parent_pid, stop), name="parent-watch", daemon=True
    ).start()

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    try:
        with socket.socket() as probe:  # werkzeug exits on a taken port without saying why
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((LOOPBACK, args.port))
        server = make_server(
            LOOPBACK,
            args.port,
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
    except (OSError, SystemExit) as exc:  # the port is taken, or not ours to bind
        reason = exc.strerror if isinstance(exc, OSError) else "the port is taken"
        print(f"failed cannot listen on {LOOPBACK}:{args.port}: {reason}", flush=True)
        return 1
    serving = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    serving.start()
    try:
        port = int(server.server_address[1])
        try:
            _create_bucket(port, args.bucket)
        except Exception as exc:
            reason = " ".join(str(exc).split())  # one line: the parent reads one
            print(f"failed cannot create bucket {args.bucket}: {reason}", flush=True)
            return 1
        print(f"ready {port}", flush=True)
        stop.wait()
    finally:
        server.shutdown()
        serving.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
