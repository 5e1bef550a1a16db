"""The README's lab, as a new user runs it: `idlefleet serve`, two `idlefleet agent` processes in
directories of their own, `idlefleet jobs submit` with Magika's pre-trained model (from its
wheel) on real files, and `idlefleet jobs results` giving exactly what bare onnxruntime gives
on the same shards. Real broker (embedded), real S3 endpoint (embedded), real gRPC, HiGHS,
onnxruntime; every process a separate `idlefleet` command sharing nothing but the protocols
(and, being a lab, the authority's key file to enroll the cars)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from executor.pretrained import find_magika_model, magika_features
from streams.broker import free_loopback_port

ROWS_PER_SHARD = 16
FILES = 48


class Process:
    """A running `idlefleet` command whose stderr goes to a file."""

    def __init__(self, name: str, argv: list[str], home: Path, state: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / f"{name}.log"
        env = {**os.environ, "IDLEFLEET_STATE_DIR": str(state), "PYTHONUNBUFFERED": "1"}
        for name_ in [k for k in env if k.startswith(("IDLEFLEET_STORE_", "IDLEFLEET_GRPC"))]:
            del env[name_]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "idlefleet.cli", *argv],
                cwd=home,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_for(self, pattern: str, timeout_s: float = 120.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log.read_text(errors="replace"))
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not seen; log:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def real_files(count: int) -> list[Path]:
    """Files of the Python standard library (source, data, compiled modules)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_size > 0)
    step = max(1, len(files) // count)
    return files[::step][:count]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A lab serve and two agents: (the operator's state directory, the gRPC target)."""
    operator = tmp_path / "operator"
    port = free_loopback_port()
    serve = Process(
        "serve",
        # 30x: a 15-minute slot every 30 s of wall time, room for a loaded machine's agents
        ["serve", "--clock-speed", "30", "--grpc-port", str(port)],
        tmp_path / "service",
        operator,
    )
    running = [serve]
    try:
        bootstrap = serve.wait_for(r"serving on (\S+) ")[1]
        serve.wait_for(r"gRPC API on port")
        for car in ("car-a", "car-b"):
            home = tmp_path / car  # its own directory: its keys, spool and model cache
            agent = Process(
                car,
                [
                    "agent",
                    "--vehicle-id",
                    car,
                    "--bootstrap-servers",
                    bootstrap,
                    "--authority-key",
                    str(operator / "authority.key"),
                    "--lab-car",
                    "berlin-depot",
                    "--telemetry-interval",
                    "2",
                ],
                home,
                home / "state",
            )
            running.append(agent)
            agent.wait_for(r"agent for 1 car")
        yield operator, f"127.0.0.1:{port}"
    finally:
        for process in reversed(running):
            process.stop()


def idlefleet(state: Path, *argv: str, timeout_s: float = 300.0) -> subprocess.CompletedProcess:
    env = {**os.environ, "IDLEFLEET_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "idlefleet.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def test_a_job_of_real_files_runs_on_two_agents_and_comes_back_as_onnxruntime_gives(
    lab: tuple[Path, str], tmp_path: Path
) -> None:
    state, target = lab
    model = find_magika_model()
    features = np.stack([magika_features(p.read_bytes(), model) for p in real_files(FILES)])
    inputs = tmp_path / "features.npy"
    np.save(inputs, features)

    submitted = idlefleet(
        state,
        "jobs", "submit", str(model.path),
        "--inputs", str(inputs),
        "--rows-per-shard", str(ROWS_PER_SHARD),
        "--deadline", "+1h",  # the planner may run the shards in its cleanest, last slot
        "--target", target,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job_id = re.search(r"submitted: (\S+) ", submitted.stderr)[1]  # type: ignore[index]
    assert "sealed; key in" in submitted.stderr

    watched = idlefleet(state, "jobs", "watch", job_id, "--target", target, "--interval", "1")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    out = tmp_path / "scores.npy"
    fetched = idlefleet(state, "jobs", "results", job_id, "--out", str(out), "--target", target)
    assert fetched.returncode == 0, fetched.stderr

    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    expected = np.concatenate(
        [
            session.run(None, {name: features[first : first + ROWS_PER_SHARD]})[0]
            for first in range(0, FILES, ROWS_PER_SHARD)
        ]
    )
    assert np.array_equal(np.load(out), expected)
    # each car ran work: both fetched the (sealed) model into their own cache
    cached = [list((tmp_path / car / "state" / "models").glob("*")) for car in ("car-a", "car-b")]
    assert any(cached), cached
