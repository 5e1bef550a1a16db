"""executor.objects against a real S3 server (moto, started by idlefleet.store) and a store
nobody answers for: round trips, multipart with progress, size bounds, missing objects,
retries, and presigned URLs used by executor.transfer as a car would."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
import time
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3

from executor import transfer
from executor.errors import StoreError
from executor.objects import ObjectStore, StoreConfig, parse_uri
from idlefleet.store.embedded import EmbeddedStore
from streams.broker import free_loopback_port

MB = 1024 * 1024


@pytest.fixture
def objects(embedded_store: EmbeddedStore) -> ObjectStore:
    config = replace(embedded_store.settings().store_config(), backoff_s=0.01, max_backoff_s=0.05)
    return ObjectStore(config)


def signature_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]


def test_put_get_size_list_delete_round_trip(objects: ObjectStore, store_prefix: str) -> None:
    objects.put(f"{store_prefix}/a/one", b"first")
    objects.put(f"{store_prefix}/a/two", b"second")
    objects.put(f"{store_prefix}/ab/three", b"not under a/")

    assert objects.get(f"{store_prefix}/a/one", max_bytes=5) == b"first"
    assert objects.size(f"{store_prefix}/a/two") == 6
    assert objects.list(f"{store_prefix}/a") == [f"{store_prefix}/a/one", f"{store_prefix}/a/two"]

    objects.put(f"{store_prefix}/empty", b"")
    assert objects.get(f"{store_prefix}/empty", max_bytes=0) == b""

    objects.delete(f"{store_prefix}/a/one")
    objects.delete(f"{store_prefix}/a/one")  # deleting a missing object is no error
    assert objects.list(f"{store_prefix}/a/") == [f"{store_prefix}/a/two"]


def test_a_20_mb_object_goes_up_in_parts_with_progress(
    objects: ObjectStore, store_prefix: str
) -> None:
    data = os.urandom(20 * MB)
    seen: list[int] = []

    objects.put(f"{store_prefix}/big", data, progress=seen.append)

    assert seen == sorted(seen) and seen[-1] == len(data)
    assert len(seen) >= 3  # one per 8 MiB part, and the total once complete
    assert objects.size(f"{store_prefix}/big") == len(data)
    assert objects.get(f"{store_prefix}/big", max_bytes=len(data)) == data


def test_an_object_larger_than_allowed_is_refused_before_reading_it(
    objects: ObjectStore, store_prefix: str
) -> None:
    objects.put(f"{store_prefix}/large", b"x" * 1000)

    with pytest.raises(StoreError) as caught:
        objects.get(f"{store_prefix}/large", max_bytes=999)

    assert caught.value.reason == (
        f"object {store_prefix}/large is 1000 bytes, more than the 999 allowed"
    )


def test_a_missing_object_is_named(objects: ObjectStore, store_prefix: str) -> None:
    for read in (
        lambda: objects.get(f"{store_prefix}/nothing", max_bytes=10),
        lambda: objects.size(f"{store_prefix}/nothing"),
    ):
        with pytest.raises(StoreError) as caught:
            read()
        assert caught.value.reason == f"object {store_prefix}/nothing not found"


@pytest.mark.parametrize(
    "uri",
    ["http://bucket/key", "s3:///key", "s3://bucket", "s3://bucket/a/../b", "s3://b/k?x=1"],
)
def test_uris_that_name_no_object_are_refused(objects: ObjectStore, uri: str) -> None:
    with pytest.raises(StoreError, match="invalid object URI"):
        objects.get(uri, max_bytes=10)


def test_parse_uri_splits_bucket_and_key() -> None:
    assert parse_uri("s3://bucket/a/b.npy") == ("bucket", "a/b.npy")
    assert parse_uri("s3://bucket") == ("bucket", "")


def test_a_store_nobody_answers_for_fails_after_its_tries_quickly() -> None:
    endpoint = f"http://127.0.0.1:{free_loopback_port()}"
    config = StoreConfig(
        endpoint_url=endpoint,
        access_key_id="lab-key-id",
        secret_access_key="lab-secret-key-3c9f",
        tries=4,
        backoff_s=0.01,
        max_backoff_s=0.05,
    )
    objects = ObjectStore(config)
    started_s = time.monotonic()

    for call in (
        lambda: objects.put("s3://idlefleet/k", b"data"),
        lambda: objects.get("s3://idlefleet/k", max_bytes=10),
        lambda: objects.list("s3://idlefleet/"),
    ):
        with pytest.raises(StoreError) as caught:
            call()
        assert caught.value.reason == (
            f"store {endpoint} unreachable after 4 tries: connection refused"
        )
        assert "lab-secret-key-3c9f" not in caught.value.reason
    assert time.monotonic() - started_s < 10
    assert "lab-secret-key-3c9f" not in repr(objects) and "lab-key-id" not in repr(config)


def test_a_presigned_get_is_all_a_car_needs(objects: ObjectStore, store_prefix: str) -> None:
    data = os.urandom(300_000)
    objects.put(f"{store_prefix}/model.onnx", data)
    url = objects.presign_get(f"{store_prefix}/model.onnx", timedelta(minutes=15))

    got = transfer.download(url, 300_000, expected_sha256=hashlib.sha256(data).hexdigest())

    assert got == data
    wrong = hashlib.sha256(b"another model").hexdigest()
    with pytest.raises(StoreError) as caught:
        transfer.download(url, 300_000, expected_sha256=wrong)
    assert caught.value.reason.startswith(
        f"sha256 mismatch for {transfer.redact(url)}: expected {wrong}, got "
    )
    assert signature_of(url) not in caught.value.reason


def test_a_presigned_put_takes_a_cars_output(objects: ObjectStore, store_prefix: str) -> None:
    uri = f"{store_prefix}/outputs/job-1_shard-000000_car-7.npy"
    url = objects.presign_put(uri, timedelta(minutes=15))

    transfer.upload(url, b"the output bytes")

    assert objects.get(uri, max_bytes=100) == b"the output bytes"


def test_presigned_urls_live_between_a_second_and_seven_days(
    objects: ObjectStore, store_prefix: str
) -> None:
    for lifetime in (timedelta(0), timedelta(days=8)):
        with pytest.raises(StoreError, match="must live between 1 s and 7 days"):
            objects.presign_get(f"{store_prefix}/k", lifetime)


def test_an_expired_presigned_url_is_refused(objects: ObjectStore, store_prefix: str) -> None:
    objects.put(f"{store_prefix}/short", b"data")
    url = objects.presign_get(f"{store_prefix}/short", timedelta(seconds=1))
    time.sleep(2.1)
    try:
        transfer.download(url, 100, expected_sha256=None, tries=1)
    except StoreError as exc:
        assert "access denied" in exc.reason
        return
    pytest.skip("moto does not enforce presigned URL expiry (AWS and MinIO do)")


class DroppingProxy(http.server.ThreadingHTTPServer):
    """An HTTP proxy in front of the real store that cuts the first GET of an object's body
    halfway; `ranges` records the Range header of every GET."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.ranges: list[str | None] = []
        self.pool = urllib3.PoolManager()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the cut connection


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: DroppingProxy

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {name: value for name, value in self.headers.items()}
        answer = self.server.pool.request(
            self.command,
            self.server.upstream + self.path,
            body=body,
            headers=headers,
            retries=False,
            redirect=False,
            decode_content=False,
        )
        first_get = self.command == "GET" and not self.server.ranges
        if self.command == "GET":
            self.server.ranges.append(self.headers.get("Range"))
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        if self.command == "HEAD":
            self.send_header("Content-Length", answer.headers.get("Content-Length", "0"))
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(answer.data)))
        self.end_headers()
        if first_get and answer.status == 200:
            self.wfile.write(answer.data[: len(answer.data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(answer.data)

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_read_that_breaks_off_resumes_from_the_bytes_received(
    objects: ObjectStore, embedded_store: EmbeddedStore, store_prefix: str
) -> None:
    data = os.urandom(2 * MB)
    objects.put(f"{store_prefix}/shard.npy", data)
    proxy = DroppingProxy(embedded_store.endpoint_url)
    threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"
        through_proxy = ObjectStore(replace(objects.config, endpoint_url=endpoint))

        assert through_proxy.get(f"{store_prefix}/shard.npy", max_bytes=len(data)) == data
    finally:
        proxy.shutdown()
        proxy.server_close()
    # the second request asks for exactly the half not received (obstore resumes a broken
    # body itself; ObjectStore.get resumes the same way when obstore's tries run out)
    assert len(proxy.ranges) == 2 and proxy.ranges[0] is None
    assert (proxy.ranges[1] or "").startswith(f"bytes={len(data) // 2}-")
