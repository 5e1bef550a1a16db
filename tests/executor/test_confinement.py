"""Files a work item names stay inside the agent's roots: outside ones are refused without a
word about them, symlinks are judged by where they lead, FIFOs and devices never block a
read or a write, and outputs are read back the same way for the validator."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from executor.agent import AgentLimits, VehicleAgent
from executor.demo_model import build_demo_model
from executor.errors import InputError, ModelError, OutputError
from executor.roots import StorageRoots
from executor.runtime import OnnxRunner
from executor.storage import load_input_array, read_verified_model
from idlefleet.sim.clock import SteppedClock
from streams.messages import Assignment, ModelRef, Result, WorkItem
from tests.executor.conftest import (
    MakeAssignment,
    RecordingCharger,
    read_output,
    write_output_array,
)

MIB = 1024 * 1024
#: A refused item comes back this fast or the agent blocked on it [s].
PROMPTLY_S = 30.0


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """Three root directories and a directory outside every root."""
    made = {name: tmp_path / name for name in ("inputs", "models", "outputs", "outside")}
    for path in made.values():
        path.mkdir()
    return made


@pytest.fixture
def roots(places: dict[str, Path]) -> StorageRoots:
    return StorageRoots((places["inputs"],), (places["models"],), (places["outputs"],))


def _model_ref(path: Path) -> ModelRef:
    data = build_demo_model()
    path.write_bytes(data)
    return ModelRef(uri=path.as_uri(), sha256=hashlib.sha256(data).hexdigest())


def _npy(path: Path, array: np.ndarray) -> str:
    np.save(path, array, allow_pickle=False)
    return str(path)


def _handle_promptly(agent: VehicleAgent, assignment: Assignment) -> list[Result]:
    """The agent's results, failing the test when it takes `PROMPTLY_S` (it blocked)."""
    results: list[Result] = []
    thread = threading.Thread(target=lambda: results.extend(agent.handle(assignment)))
    thread.daemon = True
    thread.start()
    thread.join(PROMPTLY_S)
    assert not thread.is_alive(), "the agent blocked on the item"
    return results


def _agent(runner: OnnxRunner, clock: SteppedClock, roots: StorageRoots) -> VehicleAgent:
    limits = AgentLimits(roots=roots)
    return VehicleAgent("car-1", runner, RecordingCharger(), 0.3, clock, limits=limits)


def _item(model: ModelRef, input_uri: str, output_uri: str, shard: int = 0) -> WorkItem:
    return WorkItem(
        work_id=f"w-{shard}",
        job_id="job-1",
        shard_index=shard,
        model=model,
        input_uri=input_uri,
        output_uri=output_uri,
    )


# --- roots ---------------------------------------------------------------------------------


def test_an_input_outside_the_roots_is_refused_without_its_size_or_hash(
    runner: OnnxRunner,
    clock: SteppedClock,
    make_assignment: MakeAssignment,
    places: dict[str, Path],
    roots: StorageRoots,
    features: np.ndarray,
) -> None:
    model = _model_ref(places["models"] / "m.onnx")
    secret = places["outside"] / "secret.npy"
    np.save(secret, features, allow_pickle=False)
    size, digest = str(secret.stat().st_size), hashlib.sha256(secret.read_bytes()).hexdigest()
    missing = places["outside"] / "missing.npy"
    items = [
        _item(model, str(secret), str(places["outputs"]), 0),
        _item(model, str(missing), str(places["outputs"]), 1),
    ]
    there, absent = _handle_promptly(_agent(runner, clock, roots), make_assignment("car-1", items))
    assert there.reason == f"input location {str(secret)!r} is outside the allowed roots"
    assert absent.reason == f"input location {str(missing)!r} is outside the allowed roots"
    assert size not in there.reason and digest[:8] not in there.reason
    assert not any(places["outputs"].iterdir())


def test_a_model_outside_the_roots_says_nothing_of_its_hash(
    places: dict[str, Path], roots: StorageRoots
) -> None:
    model = _model_ref(places["outside"] / "m.onnx")
    wrong = ModelRef(uri=model.uri, sha256="0" * 64)
    with pytest.raises(ModelError) as caught:
        read_verified_model(wrong, MIB, roots.model_roots)
    assert caught.value.reason.endswith("is outside the allowed roots")
    assert model.sha256 not in caught.value.reason


@pytest.mark.parametrize("link", ["file", "directory"])
def test_a_symlink_inside_a_root_leading_outside_is_refused(
    places: dict[str, Path], roots: StorageRoots, features: np.ndarray, link: str
) -> None:
    secret = Path(_npy(places["outside"] / "secret.npy", features))
    if link == "file":
        path = places["inputs"] / "innocent.npy"
        path.symlink_to(secret)
    else:
        (places["inputs"] / "sub").symlink_to(places["outside"], target_is_directory=True)
        path = places["inputs"] / "sub" / "secret.npy"
    with pytest.raises(InputError, match=r"is outside the allowed roots$"):
        load_input_array(str(path), MIB, roots.input_roots)


def test_a_symlink_leading_into_a_root_is_followed(
    places: dict[str, Path], roots: StorageRoots, features: np.ndarray
) -> None:
    real = _npy(places["inputs"] / "real.npy", features)
    (places["inputs"] / "alias.npy").symlink_to(real)
    loaded = load_input_array(str(places["inputs"] / "alias.npy"), MIB, roots.input_roots)
    np.testing.assert_array_equal(loaded, features)


def test_outputs_are_written_only_inside_the_output_roots(
    places: dict[str, Path], roots: StorageRoots
) -> None:
    (places["outputs"] / "escape").symlink_to(places["outside"], target_is_directory=True)
    for where in (places["outside"] / "new" / "dir", places["outputs"] / "escape" / "new"):
        with pytest.raises(OutputError, match=r"is outside the allowed roots$"):
            write_output_array(str(where), "job", 0, "car", np.zeros(2), roots.output_roots)
    assert not any(places["outside"].iterdir())
    uri, _ = write_output_array(
        str(places["outputs"] / "a" / "b"), "job", 0, "car", np.zeros(2), roots.output_roots
    )
    assert uri == (places["outputs"] / "a" / "b" / "job_shard-000000_car.npy").resolve().as_uri()


def test_relative_locations_are_refused(roots: StorageRoots) -> None:
    with pytest.raises(InputError, match="is not an absolute path"):
        load_input_array("inputs/x.npy", MIB, roots.input_roots)


def test_the_filesystem_root_is_never_a_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="filesystem root"):
        StorageRoots((tmp_path,), (Path("/"),), (tmp_path,))
    default = StorageRoots.default()
    assert Path("/") not in (*default.input_roots, *default.model_roots, *default.output_roots)


# --- FIFOs ----------------------------------------------------------------------------------


def test_a_fifo_input_or_model_fails_the_item_at_once(
    runner: OnnxRunner,
    clock: SteppedClock,
    make_assignment: MakeAssignment,
    places: dict[str, Path],
    roots: StorageRoots,
    features: np.ndarray,
) -> None:
    model = _model_ref(places["models"] / "m.onnx")
    fifo_input, fifo_model = places["inputs"] / "in.npy", places["models"] / "fifo.onnx"
    os.mkfifo(fifo_input)
    os.mkfifo(fifo_model)
    good_input = _npy(places["inputs"] / "ok.npy", features)
    unread = ModelRef(uri=fifo_model.as_uri(), sha256="0" * 64)
    items = [
        _item(model, str(fifo_input), str(places["outputs"]), 0),
        _item(unread, good_input, str(places["outputs"]), 1),
    ]
    by_input, by_model = _handle_promptly(
        _agent(runner, clock, roots), make_assignment("car-1", items)
    )
    assert by_input.reason == f"input {str(fifo_input)!r} is not a regular file"
    assert by_model.reason == f"model {str(fifo_model)!r} is not a regular file"


def test_a_fifo_at_the_output_name_is_replaced_not_opened(
    runner: OnnxRunner,
    clock: SteppedClock,
    make_assignment: MakeAssignment,
    places: dict[str, Path],
    roots: StorageRoots,
    features: np.ndarray,
) -> None:
    model = _model_ref(places["models"] / "m.onnx")
    planted = places["outputs"] / "job-1_shard-000000_car-1.npy"
    os.mkfifo(planted)
    blocked_dir = places["outputs"] / "fifo-dir"
    os.mkfifo(blocked_dir)
    items = [
        _item(model, _npy(places["inputs"] / "in.npy", features), str(places["outputs"]), 0),
        _item(model, _npy(places["inputs"] / "in1.npy", features), str(blocked_dir), 1),
    ]
    done, refused = _handle_promptly(_agent(runner, clock, roots), make_assignment("car-1", items))
    assert done.status == "done" and done.output_uri == planted.as_uri()
    assert planted.is_file()
    assert refused.status == "failed" and "cannot write output" in (refused.reason or "")


# --- reading outputs back -------------------------------------------------------------------


def test_read_output_returns_the_array_whose_bytes_match(tmp_path: Path) -> None:
    array = np.array(["a", "bc"])
    uri, digest = write_output_array(str(tmp_path), "job", 0, "car", array, [tmp_path])
    np.testing.assert_array_equal(read_output(uri, digest, MIB), array)


def test_read_output_refuses_what_it_should_not_read(tmp_path: Path) -> None:
    uri, digest = write_output_array(str(tmp_path), "job", 0, "car", np.zeros(8), [tmp_path])
    fifo, link = tmp_path / "fifo.npy", tmp_path / "link.npy"
    os.mkfifo(fifo)
    link.symlink_to(Path(uri.removeprefix("file://")))
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    pickled_sha = hashlib.sha256(pickled.read_bytes()).hexdigest()
    cases = [
        (str(fifo), digest, "is not a regular file"),
        (str(link), digest, "cannot read output"),  # ELOOP: a final symlink is not followed
        (uri, "f" * 64, "does not match its sha256"),
        (str(tmp_path / "gone.npy"), digest, "output file not found"),
        (str(pickled), pickled_sha, "holds Python objects"),
    ]
    for where, sha256, phrase in cases:
        with pytest.raises(OutputError, match=phrase):
            read_output(where, sha256, MIB)
    with pytest.raises(OutputError, match="more than the 100 allowed"):
        read_output(uri, digest, 100)
