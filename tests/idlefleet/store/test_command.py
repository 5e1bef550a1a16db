"""`idlefleet store`: prints the lines a user pastes into other terminals, serves until
SIGTERM, and stops its store with it."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys

from executor.objects import ObjectStore
from idlefleet.settings import StoreSettings
from streams.broker import free_loopback_port


def test_the_command_prints_its_settings_and_stops_on_sigterm() -> None:
    port = free_loopback_port()
    command = [sys.executable, "-m", "idlefleet.cli", "store", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        variables = dict(word.split("=", 1) for line in lines for word in shlex.split(line)[1:])
        assert variables["IDLEFLEET_STORE_URL"] == "s3://idlefleet"
        assert variables["IDLEFLEET_STORE_ENDPOINT"] == f"http://127.0.0.1:{port}"
        settings = StoreSettings(
            **{
                name.removeprefix("IDLEFLEET_STORE_").lower(): value
                for name, value in variables.items()
            }
        )
        objects = ObjectStore(settings.store_config())
        objects.put("s3://idlefleet/pasted", b"works")
        assert objects.get("s3://idlefleet/pasted", max_bytes=5) == b"works"

        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=20)
        assert process.returncode == 0
        assert "store stopped" in errors
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_help_shows_an_example() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "idlefleet.cli", "store", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "export IDLEFLEET_STORE_URL=" in result.stdout
