"""The car agent against hostile work: a tampered model, locations that leave their directory,
oversize files. Each is refused with a reason and logged; the fleet key never reaches a log.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from executor.agent import AgentLimits, VehicleAgent
from executor.demo_model import build_demo_model
from executor.errors import InputError, OutputError, UriError
from executor.runtime import OnnxRunner
from executor.storage import load_input_array, resolve_uri
from idlefleet.sim.clock import SteppedClock
from streams.messages import ModelRef, Result
from tests.executor.conftest import (
    MakeAssignment,
    MakeItem,
    RecordingCharger,
    WriteModel,
    WriteNpy,
    write_output_array,
)


def _agent(
    runner: OnnxRunner,
    charger: RecordingCharger,
    clock: SteppedClock,
    limits: AgentLimits | None = None,
) -> VehicleAgent:
    return VehicleAgent("car-1", runner, charger, 0.3, clock, limits=limits)


def _failed_and_logged(result: Result, caplog: pytest.LogCaptureFixture, phrase: str) -> None:
    """The item failed for `phrase`, and a record of the agent's log says so for that item."""
    assert result.status == "failed" and phrase in (result.reason or ""), result.reason
    logged = [
        r for r in caplog.records if r.name == "executor.agent" and result.work_id in r.getMessage()
    ]
    assert any(phrase in record.getMessage() for record in logged), [r.getMessage() for r in logged]


# --- a model that is not the one the job names ------------------------------------------------


def test_a_model_whose_sha256_does_not_match_is_refused_and_logged(
    runner: OnnxRunner,
    charger: RecordingCharger,
    clock: SteppedClock,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    write_model: WriteModel,
    write_npy: WriteNpy,
    features: np.ndarray,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    genuine = write_model("m.onnx", build_demo_model())
    swapped = ModelRef(uri=genuine.uri, sha256="0" * 64)  # the file is not what the job promised
    item = make_item(model=swapped, input_uri=write_npy("in.npy", features))
    caplog.set_level(logging.INFO, logger="executor")
    [result] = _agent(runner, charger, clock).handle(make_assignment("car-1", [item]))
    _failed_and_logged(result, caplog, "sha256 mismatch")
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


# --- oversize models and inputs (AgentLimits) -------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "phrase"),
    [
        (AgentLimits(max_model_bytes=1_000), "bytes, more than the 1000 allowed"),
        (AgentLimits(max_input_bytes=100), "bytes, more than the 100 allowed"),
    ],
    ids=["model", "input"],
)
def test_oversize_models_and_inputs_are_refused_and_logged(
    runner: OnnxRunner,
    charger: RecordingCharger,
    clock: SteppedClock,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    write_npy: WriteNpy,
    caplog: pytest.LogCaptureFixture,
    limits: AgentLimits,
    phrase: str,
) -> None:
    item = make_item(input_uri=write_npy("in.npy", np.zeros((64, 4), np.float32)))
    caplog.set_level(logging.INFO, logger="executor")
    agent = _agent(runner, charger, clock, limits)
    [result] = agent.handle(make_assignment("car-1", [item]))
    _failed_and_logged(result, caplog, phrase)


def test_the_default_limits_are_bounded() -> None:
    limits = AgentLimits()
    assert 0 < limits.max_model_bytes <= 1024**3 and 0 < limits.max_input_bytes <= 1024**3


# --- locations: what is refused today ---------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "http://evil.example/../../etc/passwd",
        "file://evil.example/etc/passwd",
        "file:///etc/passwd?x=..",
        "file:///etc/passwd#..",
        "/tmp/in\x00/../etc/passwd",
    ],
)
def test_remote_and_odd_locations_are_refused(uri: str) -> None:
    with pytest.raises(UriError):
        resolve_uri(uri)
    with pytest.raises(InputError):
        load_input_array(uri, 1024)


@pytest.mark.parametrize("job_id", ["%2e%2e", "..%2f..%2fetc", "%2E%2E/x"])
def test_percent_encoded_ids_are_refused(tmp_path: Path, job_id: str) -> None:
    with pytest.raises(OutputError, match="not a valid identifier"):
        write_output_array(str(tmp_path / "out"), job_id, 0, "car", np.zeros(1), [tmp_path])


def test_an_output_file_that_is_a_symlink_out_of_the_directory_is_replaced_not_followed(
    tmp_path: Path,
) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("precious")
    planted = out / "job_shard-000000_car.npy"
    planted.symlink_to(victim)
    uri, _ = write_output_array(str(out), "job", 0, "car", np.ones(3), [tmp_path])
    assert resolve_uri(uri) == planted.resolve() == out.resolve() / planted.name
    assert not planted.is_symlink()
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]


# --- locations: what gets through (executor/storage.py is not changed here) --------------------


@pytest.mark.parametrize(
    "uri",
    [
        "file:///../../etc/passwd",
        "file:///srv/in/%2e%2e/%2e%2e/etc/passwd",
        "file:///srv/in/%2E%2E/secret.npy",
        "/srv/in/../../etc/passwd",
    ],
)
def test_a_location_that_climbs_out_with_dot_dot_is_refused(uri: str) -> None:
    with pytest.raises(UriError):
        resolve_uri(uri)


def test_an_input_above_its_directory_is_not_read(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    np.save(tmp_path / "secret.npy", np.arange(3), allow_pickle=False)
    with pytest.raises(InputError):
        load_input_array(f"{inputs.as_uri()}/%2e%2e/secret.npy", 1024)


def test_an_output_location_that_climbs_out_is_not_written(tmp_path: Path) -> None:
    (tmp_path / "jobs" / "out").mkdir(parents=True)
    with pytest.raises(OutputError, match="climbs out"):
        write_output_array(
            f"{tmp_path}/jobs/out/../../escaped", "job", 0, "car", np.zeros(1), [tmp_path]
        )
    assert not (tmp_path / "escaped").exists()


def test_a_percent_encoded_nul_in_the_output_location_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError):
        write_output_array(f"{tmp_path.as_uri()}/out%00x", "job", 0, "car", np.zeros(1), [tmp_path])
