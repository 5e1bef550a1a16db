"""executor.transfer against small HTTP servers that misbehave on purpose: dropped
connections (resumed with Range), servers that ignore Range, bodies without a length,
refusals and 5xx answers. Every URL carries a signature that must never reach a message."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from executor.errors import StoreError
from executor.transfer import download, download_into, redact, upload
from streams.sealing import SealedReader, part_context, seal

SIGNATURE = "c0ffee5ignature9d8e7f"
BODY = os.urandom(256 * 1024)
BODY_SHA256 = hashlib.sha256(BODY).hexdigest()


@dataclass
class Behaviour:
    """What the test server does; `requests` records (method, Range header) of each."""

    answer: Callable[[http.server.BaseHTTPRequestHandler, int], None]
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    uploads: list[bytes] = field(default_factory=list)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    behaviour: Behaviour

    def do_GET(self) -> None:
        self.behaviour.requests.append(("GET", self.headers.get("Range")))
        self.behaviour.answer(self, len(self.behaviour.requests))

    def do_PUT(self) -> None:
        self.behaviour.requests.append(("PUT", None))
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.behaviour.uploads.append(body)
        self.behaviour.answer(self, len(self.behaviour.requests))

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that stop reading on purpose break our pipes


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[..., None]], tuple[str, Behaviour]]]:
    servers: list[QuietServer] = []

    def start(answer: Callable[..., None]) -> tuple[str, Behaviour]:
        behaviour = Behaviour(answer)
        handler = type("BoundHandler", (Handler,), {"behaviour": behaviour})
        server = QuietServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        port = server.server_address[1]
        url = f"http://127.0.0.1:{port}/bucket/job/model.onnx?X-Amz-Signature={SIGNATURE}"
        return url, behaviour

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def send(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    cut_after: int | None = None,
) -> None:
    """Answer `status` with `body` (its full Content-Length), dropping the connection after
    `cut_after` bytes of it when given."""
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body if cut_after is None else body[:cut_after])
    handler.wfile.flush()
    if cut_after is not None:
        handler.close_connection = True
        handler.connection.shutdown(2)


def ranged(handler: http.server.BaseHTTPRequestHandler, body: bytes = BODY) -> None:
    """`body`, honouring `Range: bytes=N-`."""
    wanted = handler.headers.get("Range")
    if wanted is None:
        send(handler, 200, body)
        return
    start = int(wanted.removeprefix("bytes=").removesuffix("-"))
    content_range = f"bytes {start}-{len(body) - 1}/{len(body)}"
    send(handler, 206, body[start:], {"Content-Range": content_range})


def assert_secret_free(error: BaseException) -> None:
    assert SIGNATURE not in str(error)
    assert SIGNATURE not in "".join(traceback.format_exception(error))


def test_redact_keeps_scheme_host_and_path_only() -> None:
    url = f"https://user:pw@store.example:9000/bucket/k%20ey?X-Amz-Signature={SIGNATURE}#frag"
    assert redact(url) == "https://store.example:9000/bucket/k%20ey"
    assert redact("http://[::1]:8080/b/k?sig=1") == "http://[::1]:8080/b/k"


def test_a_dropped_download_resumes_with_a_range_request(serve: Callable[..., Any]) -> None:
    def answer(handler: http.server.BaseHTTPRequestHandler, number: int) -> None:
        if number == 1:
            send(handler, 200, BODY, cut_after=len(BODY) // 2)
        else:
            ranged(handler)

    url, behaviour = serve(answer)

    assert download(url, len(BODY), expected_sha256=BODY_SHA256, backoff_s=0.01) == BODY
    # nothing received is fetched twice
    assert behaviour.requests == [("GET", None), ("GET", f"bytes={len(BODY) // 2}-")]


def test_a_server_that_ignores_range_is_read_again_in_full(serve: Callable[..., Any]) -> None:
    def answer(handler: http.server.BaseHTTPRequestHandler, number: int) -> None:
        send(handler, 200, BODY, cut_after=len(BODY) // 3 if number == 1 else None)

    url, behaviour = serve(answer)

    assert download(url, len(BODY), expected_sha256=BODY_SHA256, backoff_s=0.01) == BODY
    assert len(behaviour.requests) == 2 and behaviour.requests[1][1] is not None


def test_a_partial_answer_for_the_wrong_range_starts_over(serve: Callable[..., Any]) -> None:
    def answer(handler: http.server.BaseHTTPRequestHandler, number: int) -> None:
        if number == 1:
            send(handler, 200, BODY, cut_after=100_000)
        elif number == 2:
            send(handler, 206, BODY[10:], {"Content-Range": f"bytes 10-{len(BODY) - 1}/*"})
        else:
            ranged(handler)

    url, behaviour = serve(answer)

    assert download(url, len(BODY), expected_sha256=BODY_SHA256, backoff_s=0.01) == BODY
    assert behaviour.requests[1][1] is not None  # asked for the rest, got something else
    assert behaviour.requests[2] == ("GET", None)


def test_a_body_longer_than_allowed_without_a_length_is_refused(
    serve: Callable[..., Any],
) -> None:
    def answer(handler: http.server.BaseHTTPRequestHandler, number: int) -> None:
        handler.send_response(200)
        handler.send_header("Connection", "close")  # no Content-Length: read to the close
        handler.end_headers()
        handler.close_connection = True
        for _ in range(64):
            handler.wfile.write(BODY[: 16 * 1024])

    url, _ = serve(answer)

    with pytest.raises(StoreError) as caught:
        download(url, 100_000, expected_sha256=None)
    assert caught.value.reason == (f"object {redact(url)} is more than the 100000 bytes allowed")
    assert_secret_free(caught.value)


def test_a_declared_length_above_the_bound_is_refused_before_reading(
    serve: Callable[..., Any],
) -> None:
    url, _ = serve(lambda handler, number: send(handler, 200, BODY))

    with pytest.raises(StoreError) as caught:
        download(url, 1000, expected_sha256=None)
    assert caught.value.reason == (
        f"object {redact(url)} is {len(BODY)} bytes, more than the 1000 allowed"
    )


def test_a_wrong_sha256_is_refused_and_names_no_signature(serve: Callable[..., Any]) -> None:
    url, _ = serve(lambda handler, number: send(handler, 200, BODY))
    wrong = hashlib.sha256(b"other").hexdigest()

    with pytest.raises(StoreError) as caught:
        download(url, len(BODY), expected_sha256=wrong)

    assert caught.value.reason == (
        f"sha256 mismatch for {redact(url)}: expected {wrong}, got {BODY_SHA256}"
    )
    assert_secret_free(caught.value)


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, "not found"), (403, "access denied"), (401, "access denied")],
)
def test_refusals_are_not_retried(serve: Callable[..., Any], status: int, reason: str) -> None:
    url, behaviour = serve(lambda handler, number: send(handler, status, b"<Error/>"))

    with pytest.raises(StoreError, match=reason) as caught:
        download(url, 1000, expected_sha256=None)

    assert len(behaviour.requests) == 1
    assert_secret_free(caught.value)


def test_5xx_answers_are_retried(serve: Callable[..., Any]) -> None:
    def answer(handler: http.server.BaseHTTPRequestHandler, number: int) -> None:
        if number <= 2:
            send(handler, 503, b"slow down")
        else:
            send(handler, 200, BODY)

    url, behaviour = serve(answer)

    assert download(url, len(BODY), expected_sha256=BODY_SHA256, backoff_s=0.01) == BODY
    assert len(behaviour.requests) == 3


def test_a_server_failing_every_try_gives_up_naming_the_last_reason(
    serve: Callable[..., Any],
) -> None:
    url, behaviour = serve(lambda handler, number: send(handler, 500, b"broken"))

    with pytest.raises(StoreError) as caught:
        download(url, 1000, expected_sha256=None, tries=3, backoff_s=0.01)

    assert caught.value.reason == f"{redact(url)} failed after 3 tries: HTTP 500"
    assert len(behaviour.requests) == 3


def test_nobody_listening_is_unreachable_after_the_tries() -> None:
    from streams.broker import free_loopback_port

    url = f"http://127.0.0.1:{free_loopback_port()}/b/k?X-Amz-Signature={SIGNATURE}"

    for call in (
        lambda: download(url, 10, expected_sha256=None, backoff_s=0.01),
        lambda: upload(url, b"data", backoff_s=0.01),
    ):
        with pytest.raises(StoreError) as caught:
            call()
        assert caught.value.reason == (
            f"{redact(url)} unreachable after 4 tries: connection refused"
        )
        assert_secret_free(caught.value)


def test_an_upload_is_retried_on_5xx_and_refused_on_403(serve: Callable[..., Any]) -> None:
    def answer(handler: http.server.BaseHTTPRequestHandler, number: int) -> None:
        send(handler, 500 if number == 1 else 200, b"")

    url, behaviour = serve(answer)
    upload(url, b"the output", backoff_s=0.01)
    assert behaviour.uploads == [b"the output", b"the output"]

    denied, _ = serve(lambda handler, number: send(handler, 403, b"<Error/>"))
    with pytest.raises(StoreError, match="access denied") as caught:
        upload(denied, b"the output")
    assert_secret_free(caught.value)


def test_the_car_side_loads_no_s3_client() -> None:
    code = "import sys, executor.transfer; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert not {"obstore", "moto", "boto3", "botocore"} & set(result.stdout.split())


class Recorder:
    """A BodyConsumer that keeps what it is given: (reset sizes, the body since the last)."""

    def __init__(self) -> None:
        self.resets: list[int | None] = []
        self.body = bytearray()

    def reset(self, total_bytes: int | None) -> None:
        self.resets.append(total_bytes)
        self.body = bytearray()

    def update(self, chunk: bytes) -> None:
        self.body += chunk


def test_a_sealed_body_resumed_after_a_drop_is_checked_and_opened_as_it_comes(
    serve: Callable[..., Any],
) -> None:
    key = bytes(range(32))
    context = part_context("job-1", "input", 0)
    sealed = seal(key, BODY, context)

    def answer(handler: http.server.BaseHTTPRequestHandler, number: int) -> None:
        if number == 1:
            send(handler, 200, sealed, cut_after=len(sealed) // 3)
        else:
            ranged(handler, sealed)

    url, behaviour = serve(answer)
    reader = SealedReader(key, context)

    size = download_into(
        url,
        len(sealed),
        reader,
        expected_sha256=hashlib.sha256(sealed).hexdigest(),
        backoff_s=0.01,
    )

    assert size == len(sealed)
    assert reader.finish() == BODY
    assert behaviour.requests == [("GET", None), ("GET", f"bytes={len(sealed) // 3}-")]


def test_a_consumer_starts_over_with_the_body_and_its_hash(serve: Callable[..., Any]) -> None:
    def answer(handler: http.server.BaseHTTPRequestHandler, number: int) -> None:
        if number == 1:
            send(handler, 200, BODY, cut_after=len(BODY) // 3)
        elif number == 2:  # the server ignores the range and a shorter object came meanwhile
            send(handler, 200, BODY[:1000], cut_after=500)
        else:  # the whole body again
            send(handler, 200, BODY)

    url, behaviour = serve(answer)
    recorder = Recorder()

    download_into(url, len(BODY), recorder, expected_sha256=BODY_SHA256, backoff_s=0.01)

    assert recorder.resets == [len(BODY), 1000, len(BODY)]
    assert recorder.body == BODY
    assert len(behaviour.requests) == 3


def test_a_body_without_a_length_streams_bounded(serve: Callable[..., Any]) -> None:
    key = bytes(range(32))
    context = part_context("job-1", "input", 0)
    sealed = seal(key, BODY, context)

    def answer(handler: http.server.BaseHTTPRequestHandler, number: int) -> None:
        handler.send_response(200)
        handler.send_header("Connection", "close")  # no Content-Length: read to the close
        handler.end_headers()
        handler.close_connection = True
        for start in range(0, len(sealed), 10_000):
            handler.wfile.write(sealed[start : start + 10_000])

    url, _ = serve(answer)
    reader = SealedReader(key, context)
    sha256 = hashlib.sha256(sealed).hexdigest()
    download_into(url, len(sealed), reader, expected_sha256=sha256)
    assert reader.finish() == BODY

    recorder = Recorder()
    with pytest.raises(StoreError) as caught:
        download_into(url, len(sealed) - 1, recorder, expected_sha256=sha256)
    assert caught.value.reason == (
        f"object {redact(url)} is more than the {len(sealed) - 1} bytes allowed"
    )
    assert recorder.resets == [None]
    assert len(recorder.body) <= len(sealed) - 1  # nothing past the bound was handed on
    assert "download-sha256" not in {thread.name for thread in threading.enumerate()}


def test_a_body_larger_than_allowed_reaches_no_consumer(serve: Callable[..., Any]) -> None:
    url, _ = serve(lambda handler, number: send(handler, 200, BODY))
    recorder = Recorder()
    with pytest.raises(StoreError, match="more than the 1000 allowed"):
        download_into(url, 1000, recorder, expected_sha256=None)
    assert recorder.resets == [] and recorder.body == b""


def test_a_streamed_body_with_a_wrong_sha256_is_refused_before_it_is_opened(
    serve: Callable[..., Any],
) -> None:
    key = bytes(range(32))
    context = part_context("job-1", "input", 0)
    sealed = seal(key, BODY, context)
    url, _ = serve(lambda handler, number: send(handler, 200, sealed))
    wrong = hashlib.sha256(b"other").hexdigest()

    with pytest.raises(StoreError, match="sha256 mismatch") as caught:
        download_into(url, len(sealed), SealedReader(key, context), expected_sha256=wrong)
    assert_secret_free(caught.value)


def test_download_returns_the_whole_body_as_bytes(serve: Callable[..., Any]) -> None:
    url, _ = serve(lambda handler, number: send(handler, 200, BODY))
    body = download(url, len(BODY), expected_sha256=BODY_SHA256.upper())
    assert type(body) is bytes and body == BODY
    empty, _ = serve(lambda handler, number: send(handler, 200, b""))
    assert download(empty, 10, expected_sha256=hashlib.sha256(b"").hexdigest()) == b""
