"""Process plumbing shared by the commands: signals, and Kafka or the embedded broker."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def bootstrap_or_embedded(bootstrap_servers: str | None) -> Iterator[str]:
    """The given bootstrap servers, or an embedded broker for the block's lifetime."""
    if bootstrap_servers:
        yield bootstrap_servers
        return
    from streams.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        log.info("embedded broker on %s", broker.bootstrap_servers)
        yield broker.bootstrap_servers
