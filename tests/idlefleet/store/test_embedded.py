"""The embedded store: moto's S3 server in a child process that holds its bucket, listens
where it is told, stops cleanly, never outlives its parent, and stands in when no store is
configured."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from pydantic import SecretStr

from executor.errors import StoreError
from executor.objects import ObjectStore
from idlefleet.settings import StoreSettings
from idlefleet.store.embedded import EmbeddedStore, store_or_embedded
from streams.broker import free_loopback_port


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_the_session_store_holds_its_bucket(embedded_store: EmbeddedStore) -> None:
    assert embedded_store.endpoint_url == f"http://127.0.0.1:{embedded_store.port}"
    assert embedded_store.port > 0
    objects = ObjectStore(embedded_store.settings().store_config())
    objects.put(f"{embedded_store.url}/probe/hello", b"hello")
    assert objects.get(f"{embedded_store.url}/probe/hello", max_bytes=5) == b"hello"


def test_a_store_on_a_given_port_and_bucket_stops_cleanly() -> None:
    port = free_loopback_port()
    with EmbeddedStore(port=port, bucket="other-bucket") as store:
        pid = store.pid
        assert pid is not None and store.port == port
        objects = ObjectStore(store.settings().store_config())
        objects.put("s3://other-bucket/k", b"data")
        assert objects.list("s3://other-bucket/") == ["s3://other-bucket/k"]
    assert store.pid is None
    assert wait_gone(pid, 5.0)
    assert not answers(port)


def test_a_taken_port_fails_with_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StoreError) as caught:
            EmbeddedStore(port=port).start()
    assert caught.value.reason.startswith(
        f"embedded store failed to start: cannot listen on 127.0.0.1:{port}"
    )


def test_the_store_does_not_outlive_a_parent_killed_with_sigkill() -> None:
    parent_code = (
        "import time\n"
        "from idlefleet.store.embedded import EmbeddedStore\n"
        "store = EmbeddedStore().start()\n"
        "print(store.pid, store.port, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child_pid, port = (int(word) for word in parent.stdout.readline().split())
        assert answers(port)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert wait_gone(child_pid, 10.0), "the store outlived its parent"
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_configured_settings_are_used_as_they_are() -> None:
    configured = StoreSettings(url="s3://team-bucket/jobs", endpoint="https://minio.lab:9000")
    with store_or_embedded(configured) as settings:
        assert settings is configured


def test_without_a_configured_store_an_embedded_one_stands_in() -> None:
    with store_or_embedded(StoreSettings()) as settings:
        assert settings.url == "s3://idlefleet" and settings.endpoint is not None
        assert settings.secret_access_key == SecretStr("lab-secret")
        objects = ObjectStore(settings.store_config())
        objects.put("s3://idlefleet/k", b"data")
        assert objects.get("s3://idlefleet/k", max_bytes=4) == b"data"
        port = int(settings.endpoint.rsplit(":", 1)[1])
    assert not answers(port)
