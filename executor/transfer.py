"""A car's side of job data: plain HTTP(S) to presigned (or public) URLs, with urllib3.

A car holds no store credentials: the service hands it, per assignment, a presigned GET
URL for its model and input shard and a presigned PUT URL for its output, each expiring at
the lease end. A presigned URL's query (its signature) is a bearer secret, so every message
and log names a URL through `redact` (scheme, host and path only).

`download` is bounded by `max_bytes` whether or not the server sends a Content-Length,
resumes after a dropped connection with `Range: bytes=N-` (and starts over when the server
ignores the range), and checks the sha256 at the end. 5xx answers, 429 and connection
errors are retried with exponential backoff; 404 and 403 are not.
"""

from __future__ import annotations

import errno
import hashlib
import re
import time
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
_READ_CHUNK_BYTES = 64 * 1024
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
    pool = http or urllib3.PoolManager()
    shown = redact(url)
    received = bytearray()
    failures: list[str] = []
    for attempt in range(tries):
        if attempt:
            _sleep_before(attempt, backoff_s)
        headers = {"Range": f"bytes={len(received)}-"} if received else {}
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
            continue
        complete = False
        try:
            if not _accept(response, shown, received, max_bytes, failures):
                continue
            # read1: whatever has arrived, so a drop loses nothing already received; raw
            # bytes (no Content-Encoding decoding), as stored and hashed.
            while chunk := response.read1(_READ_CHUNK_BYTES, decode_content=False):
                received += chunk
                if len(received) > max_bytes:
                    raise StoreError(f"object {shown} is more than the {max_bytes} bytes allowed")
            complete = True
        except HTTPError as exc:  # dropped mid-body, timed out, or shorter than promised
            failures.append(_describe(exc))
            continue
        finally:
            if not complete:  # never hand a half-read connection back to the pool
                response.close()
            response.release_conn()
        return _verified(bytes(received), expected_sha256, shown)
    raise _gave_up(shown, tries, failures)


def _accept(
    response: urllib3.BaseHTTPResponse,
    shown: str,
    received: bytearray,
    max_bytes: int,
    failures: list[str],
) -> bool:
    """Whether the body of `response` continues (or starts) `received`; False (with the
    reason in `failures`) when it is worth another try; StoreError when no try will help."""
    status = response.status
    _raise_for_refusal(status, shown)
    if status >= 500 or status == 429:
        failures.append(f"HTTP {status}")
        return False
    if status == 416 and received:  # the object shrank under us: start over
        received.clear()
        failures.append("range not satisfiable")
        return False
    if status == 206 and received:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != len(received):
            received.clear()  # not the rest we asked for: start over
            failures.append("a partial answer for the wrong range")
            return False
        total = match.group(3)
        if total != "*" and int(total) > max_bytes:
            raise StoreError(f"object {shown} is {total} bytes, more than the {max_bytes} allowed")
        return True
    if status == 200:
        received.clear()  # a fresh answer (the server ignored our range, if any)
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise StoreError(f"object {shown} is {length} bytes, more than the {max_bytes} allowed")
        return True
    raise StoreError(f"GET {shown} answered HTTP {status}")


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


def _verified(data: bytes, expected_sha256: str | None, shown: str) -> bytes:
    if expected_sha256 is None:
        return data
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256.lower():
        raise StoreError(f"sha256 mismatch for {shown}: expected {expected_sha256}, got {actual}")
    return data


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
