"""The embedded S3-compatible store: moto's standalone server in a child process.

Used by `idlefleet store`, by commands when no store is configured (`store_or_embedded`),
and by the test suite. Objects live in the child's memory and vanish when it stops. The
child (`idlefleet.store.server`) runs in its own interpreter, so serving S3 requests never
holds the caller's GIL; it binds a free loopback port (or the one given), creates the
bucket, says it is ready, and exits when stopped or when its parent dies.

The store is for labs: it listens on loopback only and checks no signature, so the lab
credentials below grant nothing any local process could not do.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from pydantic import SecretStr

from executor.errors import StoreError
from idlefleet.settings import StoreSettings
from idlefleet.store.server import (
    LAB_ACCESS_KEY_ID,
    LAB_REGION,
    LAB_SECRET_ACCESS_KEY,
    LOOPBACK,
)
from streams.broker import stop_process

log = logging.getLogger(__name__)

DEFAULT_BUCKET = "idlefleet"


class EmbeddedStore:
    """moto's S3 server on a loopback port, holding one bucket.

    Use as a context manager, or call `start()` and `stop()`. `port` None (or 0): a free
    port, known once started.
    """

    access_key_id = LAB_ACCESS_KEY_ID
    secret_access_key = LAB_SECRET_ACCESS_KEY
    region = LAB_REGION

    def __init__(
        self, port: int | None = None, bucket: str = DEFAULT_BUCKET, log_path: Path | None = None
    ) -> None:
        self.port = port or 0
        self.bucket = bucket
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """`s3://BUCKET`: where job data goes."""
        return f"s3://{self.bucket}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def settings(self) -> StoreSettings:
        """Store settings that reach this store with its lab credentials."""
        return StoreSettings(
            url=self.url,
            endpoint=self.endpoint_url,
            region=self.region,
            access_key_id=SecretStr(self.access_key_id),
            secret_access_key=SecretStr(self.secret_access_key),
        )

    def start(self, ready_timeout_s: float = 60.0) -> EmbeddedStore:
        """Start the server and return once it answers and holds the bucket."""
        command = [
            sys.executable,
            "-m",
            "idlefleet.store.server",
            "--port",
            str(self.port),
            "--bucket",
            self.bucket,
            "--parent-pid",
            str(os.getpid()),
        ]
        errors = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        log.info("starting embedded store (moto) on %s:%s", LOOPBACK, self.port or "a free port")
        try:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=errors, start_new_session=True
            )
        finally:
            if errors is not subprocess.DEVNULL:
                errors.close()  # type: ignore[union-attr]
        try:
            self.port = self._wait_ready(self._process, ready_timeout_s)
        except BaseException:
            self.stop(timeout_s=2.0)
            raise
        log.info("embedded store on %s, bucket %s", self.endpoint_url, self.bucket)
        return self

    def _wait_ready(self, process: subprocess.Popen[bytes], timeout_s: float) -> int:
        """The port from the child's `ready PORT` line; StoreError if it fails or is late."""
        assert process.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = b""
        while not line.endswith(b"\n"):
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise StoreError(f"embedded store did not answer within {timeout_s:.0f} s")
            readable, _, _ = select.select([process.stdout], [], [], remaining_s)
            if not readable:
                continue
            byte = os.read(process.stdout.fileno(), 1)
            if not byte:  # the child closed its output: it exited
                code = process.wait()
                raise StoreError(f"embedded store exited with code {code} before answering")
            line += byte
        process.stdout.close()
        text = line.decode(errors="replace").strip()
        kind, _, detail = text.partition(" ")
        if kind == "ready" and detail.isdigit():
            return int(detail)
        raise StoreError(f"embedded store failed to start: {detail or text}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdout is not None and not process.stdout.closed:
            process.stdout.close()
        stop_process(process, timeout_s)

    def __enter__(self) -> EmbeddedStore:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def store_or_embedded(settings: StoreSettings) -> Iterator[StoreSettings]:
    """`settings` when they name a store (a url), else an embedded store's settings for the
    block's lifetime."""
    if settings.url is not None:
        yield settings
        return
    with EmbeddedStore() as store:
        log.info("embedded store on %s (%s)", store.endpoint_url, store.url)
        yield store.settings()
