"""A car's side of job data: plain HTTP(S) to presigned (or public) URLs, with urllib3.

A car holds no store credentials: the service hands it, per assignment, a presigned GET
URL for its model and input shard and a presigned PUT URL for its output, each expiring at
the lease end. A presigned URL's query (its signature) is a bearer secret, so every message
and log names a URL through `redact` (scheme, host and path only).

`download` is bounded by `max_bytes` whether or not the server sends a Content-Length,
resumes after a dropped connection with `Range: bytes=N-` (and starts over when the server
ignores the range), and checks the sha256 of the whole body before returning it. 5xx
answers, 429 and connection errors are retried with exponential backoff; 404 and 403 are
not. `download_into` does the same but streams the body into a `BodyConsumer` (a
`streams.sealing.SealedReader` decrypts it as it comes). The sha256 is computed in a worker
thread as the chunks arrive, so hashing overlaps the socket reads.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import queue
import re
import threading
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
)
from urllib3.exceptions import (
    TimeoutError as Urllib3TimeoutError,
)

from executor.errors import StoreError

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_READ_CHUNK_BYTES = 1024 * 1024
_MAX_BACKOFF_S = 8.0


def redact(url: str) -> str:
    """`scheme://host[:port]/path` of `url`: no user info, query or fragment (a presigned
    URL's signature lives in its query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path}"


class BodyConsumer(Protocol):
    """Takes a body's bytes as they arrive, in order (`download_into` calls it in its
    caller's thread)."""

    def reset(self, total_bytes: int | None) -> None:
        """A body starts (again) from its first byte: forget every byte taken before.
        `total_bytes` [bytes] is its size when the server said (never above `max_bytes`)."""

    def update(self, chunk: bytes) -> None:
        """The body's next bytes."""


def download(
    url: str,
    max_bytes: int,
    *,
    expected_sha256: str | None,
    tries: int = 4,
    timeout_s: float = 30.0,
    backoff_s: float = 0.5,
    http: urllib3.PoolManager | None = None,
) -> bytes:
    """The body at `url` (GET), at most `max_bytes` [bytes], whose sha256 is
    `expected_sha256` (hex; None: not checked). StoreError with a one-line reason otherwise.

    Up to `tries` requests; each waits at most `timeout_s` [s] to connect and between bytes.
    After a broken transfer the next request asks for the rest (`Range: bytes=N-`); a 206
    whose Content-Range starts elsewhere, or a 200, starts over.
    """
    chunks = _Chunks()
    download_into(
        url,
        max_bytes,
        chunks,
        expected_sha256=expected_sha256,
        tries=tries,
        timeout_s=timeout_s,
        backoff_s=backoff_s,
        http=http,
    )
    return chunks.joined()


def download_into(
    url: str,
    max_bytes: int,
    consumer: BodyConsumer,
    *,
    expected_sha256: str | None,
    tries: int = 4,
    timeout_s: float = 30.0,
    backoff_s: float = 0.5,
    http: urllib3.PoolManager | None = None,
) -> int:
    """Stream the body at `url` into `consumer` as `download` fetches it (bounded, resumed,
    retried alike) and return its size [bytes] once it is whole and its sha256 is
    `expected_sha256`; StoreError otherwise (`consumer` then holds no verified body).

    `consumer` is called in the calling thread as chunks arrive; the sha256 is computed in
    a worker thread meanwhile. `consumer.reset` is called whenever a body starts from its
    first byte; a resumed transfer (206 for the rest) goes on feeding it where it stopped.
    """
    pool = http or urllib3.PoolManager()
    shown = redact(url)
    progress = _Progress()
    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        sha256 = None if expected_sha256 is None else stack.enter_context(_Sha256())
        sink = _Sink(consumer, sha256)
        for attempt in range(tries):
            if attempt:
                _sleep_before(attempt, backoff_s)
            if _receive(pool, url, shown, max_bytes, timeout_s, progress, sink, failures):
                break
        else:
            raise _gave_up(shown, tries, failures)
        if sha256 is not None and expected_sha256 is not None:
            actual = sha256.hexdigest()
            if actual != expected_sha256.lower():
                raise StoreError(
                    f"sha256 mismatch for {shown}: expected {expected_sha256}, got {actual}"
                )
    return progress.received


@dataclass(frozen=True)
class _Sink:
    """Where received chunks go: the worker hashing them (first, so it starts at once),
    then the consumer."""

    consumer: BodyConsumer
    sha256: _Sha256 | None

    def reset(self, total: int | None) -> None:
        if self.sha256 is not None:
            self.sha256.reset()
        self.consumer.reset(total)

    def update(self, chunk: bytes) -> None:
        if self.sha256 is not None:
            self.sha256.update(chunk)
        self.consumer.update(chunk)


def _receive(
    pool: urllib3.PoolManager,
    url: str,
    shown: str,
    max_bytes: int,
    timeout_s: float,
    progress: _Progress,
    sink: _Sink,
    failures: list[str],
) -> bool:
    """One GET: True once the body is whole; False (the reason in `failures`) when another
    try may help; StoreError when none will."""
    headers = {"Range": f"bytes={progress.received}-"} if progress.received else {}
    try:
        response = pool.request(
            "GET",
            url,
            headers={"Accept-Encoding": "identity", **headers},
            preload_content=False,
            retries=False,
            redirect=False,
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
        )
    except HTTPError as exc:
        failures.append(_describe(exc))
        return False
    complete = False
    try:
        if not _accept(response, shown, progress, max_bytes, failures):
            return False
        if progress.received == 0:
            sink.reset(progress.total)
        # read1: whatever has arrived, so a drop loses nothing already received; raw
        # bytes (no Content-Encoding decoding), as stored and hashed.
        while chunk := response.read1(_READ_CHUNK_BYTES, decode_content=False):
            progress.received += len(chunk)
            if progress.received > max_bytes:
                raise StoreError(f"object {shown} is more than the {max_bytes} bytes allowed")
            sink.update(chunk)
        complete = True
    except HTTPError as exc:  # dropped mid-body, timed out, or shorter than promised
        failures.append(_describe(exc))
        return False
    finally:
        if not complete:  # never hand a half-read connection back to the pool
            response.close()
        response.release_conn()
    return True


@dataclass
class _Progress:
    """How much of the body has been received [bytes], and its size when known [bytes]."""

    received: int = 0
    total: int | None = None

    def restart(self, total: int | None) -> None:
        self.received = 0
        self.total = total


def _accept(
    response: urllib3.BaseHTTPResponse,
    shown: str,
    progress: _Progress,
    max_bytes: int,
    failures: list[str],
) -> bool:
    """Whether the body of `response` continues (or starts) what `progress` received; False
    (with the reason in `failures`) when it is worth another try; StoreError when no try will
    help."""
    status = response.status
    _raise_for_refusal(status, shown)
    if status >= 500 or status == 429:
        failures.append(f"HTTP {status}")
        return False
    if status == 416 and progress.received:  # the object shrank under us: start over
        progress.restart(None)
        failures.append("range not satisfiable")
        return False
    if status == 206 and progress.received:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != progress.received:
            progress.restart(None)  # not the rest we asked for: start over
            failures.append("a partial answer for the wrong range")
            return False
        total = match.group(3)
        if total != "*" and int(total) > max_bytes:
            raise StoreError(f"object {shown} is {total} bytes, more than the {max_bytes} allowed")
        return True
    if status == 200:
        length = response.headers.get("Content-Length")
        size = int(length) if length is not None and length.isdigit() else None
        if size is not None and size > max_bytes:
            raise StoreError(f"object {shown} is {size} bytes, more than the {max_bytes} allowed")
        progress.restart(size)  # a fresh answer (the server ignored our range, if any)
        return True
    raise StoreError(f"GET {shown} answered HTTP {status}")


class _Chunks:
    """A body kept as the chunks it came in, joined into bytes once (one copy)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def reset(self, total_bytes: int | None) -> None:
        self._chunks = []

    def update(self, chunk: bytes) -> None:
        self._chunks.append(chunk)

    def joined(self) -> bytes:
        chunks, self._chunks = self._chunks, []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _Reset:
    """A body starts over."""


class _Sha256:
    """The sha256 of a body, computed in a worker thread as its chunks are handed over, so
    that hashing overlaps the socket reads (`hashlib` releases the GIL for large updates).
    Use as a context manager: leaving it stops the worker."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._queue: queue.SimpleQueue[bytes | _Reset | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name="download-sha256", daemon=True)
        self._stopping = False

    def __enter__(self) -> _Sha256:
        self._worker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._worker.is_alive():  # left early: drop what is queued
            self._stopping = True
            self._queue.put(None)
            self._worker.join()

    def reset(self) -> None:
        self._queue.put(_Reset())

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def hexdigest(self) -> str:
        """The sha256 (hex) of the chunks handed over since the last reset, once hashed."""
        self._queue.put(None)
        self._worker.join()
        return self._sha256.hexdigest()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._stopping:
                continue
            if isinstance(item, _Reset):
                self._sha256 = hashlib.sha256()
            else:
                self._sha256.update(item)


def upload(
    url: str,
    data: bytes,
    *,
    tries: int = 4,
    timeout_s: float = 60.0,
    backoff_s: float = 0.5,
    http: urllib3.PoolManager | None = None,
) -> None:
    """PUT `data` to `url` (a presigned PUT URL), up to `tries` times on 5xx, 429 and
    connection errors; StoreError with a one-line reason when it does not succeed."""
    pool = http or urllib3.PoolManager()
    shown = redact(url)
    failures: list[str] = []
    for attempt in range(tries):
        if attempt:
            _sleep_before(attempt, backoff_s)
        try:
            response = pool.request(
                "PUT",
                url,
                body=data,
                headers={"Content-Length": str(len(data))},
                retries=False,
                redirect=False,
                timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            )
        except HTTPError as exc:
            failures.append(_describe(exc))
            continue
        status = response.status
        if 200 <= status < 300:
            return
        _raise_for_refusal(status, shown)
        if status >= 500 or status == 429:
            failures.append(f"HTTP {status}")
            continue
        raise StoreError(f"PUT {shown} answered HTTP {status}")
    raise _gave_up(shown, tries, failures)


def _raise_for_refusal(status: int, shown: str) -> None:
    if status == 404:
        raise StoreError(f"object {shown} not found")
    if status in (401, 403):
        raise StoreError(f"access denied to {shown} (the URL expired or was not signed for it)")


def _gave_up(shown: str, tries: int, failures: list[str]) -> StoreError:
    last = failures[-1] if failures else "no answer"
    if all(reason in _UNREACHABLE for reason in failures):
        return StoreError(f"{shown} unreachable after {tries} tries: {last}")
    return StoreError(f"{shown} failed after {tries} tries: {last}")


_UNREACHABLE = {"connection refused", "cannot connect", "connect timed out", "host not found"}


def _describe(exc: HTTPError) -> str:
    """A short reason for urllib3's `exc`, free of the URL (and so of any signature)."""
    if isinstance(exc, NameResolutionError):
        return "host not found"
    if isinstance(exc, NewConnectionError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED:
                return "connection refused"
            cause = cause.__cause__ or cause.__context__
        return "cannot connect"
    if isinstance(exc, ConnectTimeoutError):
        return "connect timed out"
    if isinstance(exc, Urllib3TimeoutError):
        return "timed out"
    if isinstance(exc, ProtocolError):
        return "connection dropped"
    return type(exc).__name__


def _sleep_before(attempt: int, backoff_s: float) -> None:
    """Wait before try `attempt` (1: the second): `backoff_s` doubled per try, capped."""
    time.sleep(min(backoff_s * 2 ** (attempt - 1), _MAX_BACKOFF_S))
