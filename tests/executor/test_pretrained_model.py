"""A real pre-trained model from a wheel (Magika) runs through the car agent on real files."""

from __future__ import annotations

import gzip
import sysconfig
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from executor.agent import VehicleAgent
from executor.errors import ModelError
from executor.pretrained import find_magika_model, magika_features, magika_labels
from executor.runtime import OnnxRunner
from idlefleet.sim.clock import SteppedClock
from streams.messages import ModelRef
from tests.executor.conftest import MakeAssignment, MakeItem, RecordingCharger, WriteNpy

REPO = Path(__file__).parents[2]


def real_files() -> dict[str, bytes]:
    """Files that exist on any machine with this repo and Python: their expected type."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return {
        "python": (stdlib / "json" / "decoder.py").read_bytes(),
        "json": (REPO / "idlefleet" / "data" / "sites.json").read_bytes(),
        "csv": (REPO / "forecasting" / "data" / "intensity_de_2020-06.csv").read_bytes(),
        "markdown": (REPO / "README.md").read_bytes(),
        "gzip": gzip.compress((REPO / "README.md").read_bytes(), mtime=0),
    }


def test_features_follow_magikas_layout() -> None:
    model = find_magika_model()
    features = magika_features(b"  \nabc\n\n", model)
    assert features.dtype == np.int32 and features.shape == (model.feature_size,)
    # The start loses its leading whitespace, the end its trailing whitespace.
    assert list(features[:6]) == [97, 98, 99, 10, 10, model.padding_token]
    assert list(features[-7:]) == [model.padding_token, 32, 32, 10, 97, 98, 99]


def test_the_agent_runs_magika_on_real_files_and_names_their_types(
    tmp_path: Path,
    runner: OnnxRunner,
    charger: RecordingCharger,
    clock: SteppedClock,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    write_npy: WriteNpy,
) -> None:
    model = find_magika_model()
    files = real_files()
    shard = np.stack([magika_features(content, model) for content in files.values()])
    item = make_item(
        model=ModelRef(uri=model.path.as_uri(), sha256=model.sha256),
        input_uri=write_npy("files.npy", shard),
    )
    agent = VehicleAgent("car-1", runner, charger, compute_kw=0.3, clock=clock)
    [result] = agent.handle(make_assignment("car-1", [item]))
    assert result.status == "done", result.reason
    assert result.provider == "CPUExecutionProvider"
    assert result.output_uri is not None
    scores = np.load(result.output_uri.removeprefix("file://"))
    assert magika_labels(scores, model) == list(files)


def test_a_missing_model_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="not found"):
        find_magika_model("no_such_model")


def test_labels_refuse_scores_of_the_wrong_shape() -> None:
    with pytest.raises(ModelError, match="shape"):
        magika_labels(np.zeros((1, 3), dtype=np.float32), find_magika_model())


def test_the_config_matches_the_models_input_contract() -> None:
    model = find_magika_model()
    contract = OnnxRunner().contract(model.path.read_bytes(), model.sha256)
    assert contract.input_dtype == np.dtype(np.int32)
    assert contract.input_shape[1] == model.feature_size


def test_the_command_line_writes_features_of_real_files_and_names_their_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from executor.pretrained import main

    sources = tmp_path / "files"
    sources.mkdir()
    package = Path(__file__).resolve().parents[2]  # real files of this repository
    (sources / "a.py").write_bytes((package / "executor" / "storage.py").read_bytes())
    (sources / "b.json").write_bytes((package / "docs" / "plan-v2.schema.json").read_bytes())
    out = tmp_path / "features.npy"
    assert main(["features", str(sources), "--out", str(out)]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == [str(sources / "a.py"), str(sources / "b.json")]
    rows = np.load(out)
    model = find_magika_model()
    assert rows.shape == (2, model.feature_size) and rows.dtype == np.int32
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    scores = session.run(None, {session.get_inputs()[0].name: rows})[0]
    np.save(tmp_path / "scores.npy", scores)
    assert main(["labels", str(tmp_path / "scores.npy")]) == 0
    assert capsys.readouterr().out.split() == ["python", "json"]
