"""The demo model: valid ONNX, deterministic bytes, computes what its NumPy twin computes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from executor import demo_model
from executor.demo_model import build_demo_model, demo_reference

# Pinned: a change here means every published demo ModelRef breaks.
DEMO_SHA256 = "3d279219279a12ac1027d2def607118976262402962a364c1d41aa5da21f40c6"


def test_demo_model_bytes_are_deterministic() -> None:
    assert build_demo_model() == build_demo_model()
    assert hashlib.sha256(build_demo_model()).hexdigest() == DEMO_SHA256


def test_demo_model_passes_the_checker_with_the_promised_contract() -> None:
    model = onnx.load_from_string(build_demo_model())
    onnx.checker.check_model(model, full_check=True)
    assert [opset.version for opset in model.opset_import if opset.domain == ""] == [17]
    (graph_input,) = model.graph.input
    (graph_output,) = model.graph.output
    assert graph_input.name == "features"
    assert graph_output.name == "embedding"
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert dims == ["batch", 4]
    dims = [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim]
    assert dims == ["batch", 8]


def test_demo_model_matches_its_numpy_reference(features: np.ndarray) -> None:
    session = ort.InferenceSession(build_demo_model(), providers=["CPUExecutionProvider"])
    (embedding,) = session.run(["embedding"], {"features": features})
    assert embedding.shape == (3, 8)
    np.testing.assert_allclose(embedding, demo_reference(features), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, rtol=1e-5)


def test_module_cli_writes_the_same_bytes_in_a_fresh_process(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "demo.onnx"
    completed = subprocess.run(
        [sys.executable, "-m", "executor.demo_model", str(out)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(demo_model.__file__).parent.parent,
    )
    assert hashlib.sha256(out.read_bytes()).hexdigest() == DEMO_SHA256
    assert DEMO_SHA256 in completed.stdout
