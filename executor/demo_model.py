"""The demo ONNX model: a tiny deterministic MLP built with `onnx.helper` (no torch).

    features [batch, 4] float32
      -> MatMul(W1 [4, 16]) + b1 -> Relu
      -> MatMul(W2 [16, 8]) + b2
      -> LpNormalization (p=2, last axis)
      -> embedding [batch, 8] float32 (unit L2 norm per row)

The weights come from a fixed seed through NumPy's frozen legacy generator, and the graph
carries no timestamps, so the serialised bytes (and their sha256) are the same on every
run. `python -m executor.demo_model OUT.onnx` writes it.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "features"
OUTPUT_NAME = "embedding"
FEATURES = 4
HIDDEN = 16
EMBEDDING = 8
OPSET = 17
IR_VERSION = 8  # the oldest IR that carries opset 17: loads on older onnxruntime builds too
SEED = 20_240_601


def demo_weights() -> dict[str, np.ndarray]:
    """The MLP's parameters, float32, from the fixed seed."""
    # RandomState's stream is frozen by NumPy's compatibility policy (Generator's is not).
    rng = np.random.RandomState(SEED)
    w1 = rng.standard_normal((FEATURES, HIDDEN)) / np.sqrt(FEATURES)
    b1 = rng.standard_normal(HIDDEN) * 0.1
    w2 = rng.standard_normal((HIDDEN, EMBEDDING)) / np.sqrt(HIDDEN)
    b2 = rng.standard_normal(EMBEDDING) * 0.1 + 0.05
    return {
        name: value.astype(np.float32)
        for name, value in {"W1": w1, "b1": b1, "W2": w2, "b2": b2}.items()
    }


def build_demo_model() -> bytes:
    """Serialised demo model (checked with `onnx.checker`); identical bytes on every call."""
    weights = demo_weights()
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "W1"], ["h_mm"], name="dense1_matmul"),
        helper.make_node("Add", ["h_mm", "b1"], ["h_pre"], name="dense1_bias"),
        helper.make_node("Relu", ["h_pre"], ["h"], name="dense1_relu"),
        helper.make_node("MatMul", ["h", "W2"], ["o_mm"], name="dense2_matmul"),
        helper.make_node("Add", ["o_mm", "b2"], ["o_pre"], name="dense2_bias"),
        helper.make_node(
            "LpNormalization", ["o_pre"], [OUTPUT_NAME], name="l2_normalise", axis=-1, p=2
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "idlefleet_demo_mlp",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", FEATURES])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", EMBEDDING])],
        initializer=[numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="idlefleet.executor.demo_model",
        producer_version="1",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(deterministic=True)


def demo_reference(features: np.ndarray) -> np.ndarray:
    """What the demo model computes, in NumPy (float32 [batch, 4] -> float32 [batch, 8])."""
    weights = demo_weights()
    hidden = np.maximum(features @ weights["W1"] + weights["b1"], 0.0)
    out = hidden @ weights["W2"] + weights["b2"]
    norm = np.linalg.norm(out, axis=-1, keepdims=True)
    return (out / norm).astype(np.float32)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the demo model to the given path and print its size [bytes] and sha256."""
    parser = argparse.ArgumentParser(
        prog="python -m executor.demo_model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out", type=Path, help="where to write the .onnx file")
    args = parser.parse_args(argv)
    data = build_demo_model()
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"{out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
