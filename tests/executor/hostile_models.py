"""Models that misbehave, built with `onnx.helper`: each takes the demo's input `features`
[batch, 4] float32 and returns one row per input row, so the agent feeds them in chunks.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]
#: A value of the input that makes `runaway_loop_model` loop 10^15 times.
FOREVER = 1e15


def _model(nodes: list[onnx.NodeProto], name: str, initializers: list[np.ndarray]) -> bytes:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[
            numpy_helper.from_array(array, f"c{i}") for i, array in enumerate(initializers)
        ],
    )
    model = helper.make_model(graph, opset_imports=OPSET, ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def runaway_loop_model() -> bytes:
    """y = x + n, where a `Loop` adds 1 n times and n is the largest value of the chunk: rows
    of small values finish at once, a chunk holding `FOREVER` runs 10^15 iterations."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["x_in", "one"], ["x_out"]),
        ],
        "add_one",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_in", TensorProto.FLOAT, ["batch", 4]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_out", TensorProto.FLOAT, ["batch", 4]),
        ],
        initializer=[numpy_helper.from_array(np.ones(1, np.float32), "one")],
    )
    nodes = [
        helper.make_node("ReduceMax", ["features"], ["largest"], keepdims=0),
        helper.make_node("Cast", ["largest"], ["trips"], to=TensorProto.INT64),
        helper.make_node("Loop", ["trips", "c0", "features"], ["y"], body=body),
    ]
    return _model(nodes, "runaway_loop", [np.array(True)])


def _square_of_ones(side: int) -> list[onnx.NodeProto]:
    """Nodes making `big`: a [side, side] float32 tensor of the input's mean (not constant,
    so onnxruntime cannot fold it away when the session loads)."""
    return [
        helper.make_node("ReduceMean", ["features"], ["mean"], keepdims=0),
        helper.make_node("Expand", ["mean", "c0"], ["big"]),
    ]


def long_node_model(side: int = 12288) -> bytes:
    """One `MatMul` of two [side, side] matrices: about 2 * side^3 flops (3.7 TFLOP at 12288,
    tens of seconds on one core) in a single node, which `RunOptions.terminate` cannot end."""
    nodes = [
        *_square_of_ones(side),
        helper.make_node("MatMul", ["big", "big"], ["product"]),
        helper.make_node("ReduceMax", ["product"], ["peak"], keepdims=0),
        helper.make_node("Add", ["features", "peak"], ["y"]),
    ]
    return _model(nodes, "long_node", [np.array([side, side], np.int64)])


def memory_hog_model(side: int = 2**15) -> bytes:
    """Asks for a [side, side] float32 tensor (4 GiB at 2^15) and reduces it to one number."""
    nodes = [
        *_square_of_ones(side),
        helper.make_node("ReduceMax", ["big"], ["peak"], keepdims=0),
        helper.make_node("Add", ["features", "peak"], ["y"]),
    ]
    return _model(nodes, "memory_hog", [np.array([side, side], np.int64)])
