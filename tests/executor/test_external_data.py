"""Models whose tensors name other files are refused before a session exists, wherever the
tensor hides: main graph, Constant attributes, sparse initializers, If/Loop subgraphs nested
at any depth, model-local functions."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from executor.demo_model import build_demo_model
from executor.errors import ModelError
from executor.external_data import refuse_external_data
from executor.runtime import OnnxRunner

SECRET = "secret.bin"
OPSET = [helper.make_opsetid("", 17)]
X = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])]


def external(name: str) -> onnx.TensorProto:
    """A float32 [4] tensor whose data onnxruntime would read from the file `SECRET`."""
    tensor = numpy_helper.from_array(np.zeros(4, np.float32), name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", SECRET
    return tensor


def _graph(nodes: list[onnx.NodeProto], name: str, inputs: list[onnx.ValueInfoProto], out: str,
           initializer: list[onnx.TensorProto] | None = None) -> onnx.GraphProto:  # fmt: skip
    output = [helper.make_tensor_value_info(out, TensorProto.FLOAT, [4])]
    return helper.make_graph(nodes, name, inputs, output, initializer=initializer or [])


def _model(graph: onnx.GraphProto, **extra: object) -> bytes:
    return helper.make_model(graph, opset_imports=OPSET, ir_version=8, **extra).SerializeToString()


def main_graph_model() -> bytes:
    add = helper.make_node("Add", ["x", "w"], ["y"])
    return _model(_graph([add], "main", X, "y", [external("w")]))


def constant_model() -> bytes:
    constant = helper.make_node("Constant", [], ["w"], "const", value=external("c"))
    return _model(_graph([constant, helper.make_node("Add", ["x", "w"], ["y"])], "c", X, "y"))


def sparse_model() -> bytes:
    values = external("s")
    indices = numpy_helper.from_array(np.arange(4, dtype=np.int64), "s_indices")
    graph = _graph([helper.make_node("Add", ["x", "s"], ["y"])], "sparse", X, "y")
    graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))
    return _model(graph)


def if_model(depth: int = 1) -> bytes:
    """y = x + w when max(x) < 1, else x; `w` external, in the `then` branch of an If nested
    `depth` If nodes deep (every level takes the same branch)."""
    branch = _graph(
        [helper.make_node("Add", ["x", "w"], ["t0"])], "then0", [], "t0", [external("w")]
    )
    for level in range(1, depth + 1):
        keep = _graph([helper.make_node("Identity", ["x"], [f"e{level}"])], "else", [], f"e{level}")
        node = helper.make_node(
            "If", ["c"], [f"t{level}"], f"if{level}", then_branch=branch, else_branch=keep
        )
        branch = _graph([node], f"then{level}", [], f"t{level}")
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
        helper.make_node("Less", ["m", "one"], ["c"]),
        *branch.node,
    ]
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    return _model(_graph(nodes, "outer", X, f"t{depth}", [one]))


def loop_model() -> bytes:
    """A Loop whose body holds the external tensor as a Constant."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Constant", [], ["w"], "inner", value=external("w")),
            helper.make_node("Add", ["acc_in", "w"], ["acc_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [4]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [4]),
        ],
    )
    trips = numpy_helper.from_array(np.array(1, np.int64), "trips")
    yes = numpy_helper.from_array(np.array(True), "yes")
    loop = helper.make_node("Loop", ["trips", "yes", "x"], ["y"], "loop", body=body)
    return _model(_graph([loop], "looped", X, "y", [trips, yes]))


def function_model() -> bytes:
    """A model-local function whose Constant is external."""
    function = helper.make_function(
        "local.idlefleet",
        "AddSecret",
        ["a"],
        ["b"],
        [
            helper.make_node("Constant", [], ["w"], value=external("w")),
            helper.make_node("Add", ["a", "w"], ["b"]),
        ],
        OPSET,
    )
    call = helper.make_node("AddSecret", ["x"], ["y"], domain="local.idlefleet")
    graph = _graph([call], "calls", X, "y")
    opsets = [*OPSET, helper.make_opsetid("local.idlefleet", 1)]
    return helper.make_model(
        graph, opset_imports=opsets, ir_version=8, functions=[function]
    ).SerializeToString()


@pytest.mark.parametrize(
    ("model", "where"),
    [
        (main_graph_model(), "initializer 'w' in the main graph"),
        (constant_model(), "attribute 'value' of node 'const' (Constant) in the main graph"),
        (sparse_model(), "sparse initializer 's' in the main graph"),
        (if_model(), "initializer 'w' in subgraph 'then_branch' of node 'if1' (If)"),
        (if_model(depth=20), "of node 'if1' (If) in subgraph 'then_branch' of node 'if2'"),
        (loop_model(), "node 'inner' (Constant) in subgraph 'body' of node 'loop' (Loop)"),
        (function_model(), "in function 'AddSecret'"),
    ],
    ids=["main-graph", "constant", "sparse", "if", "if-20-deep", "loop", "function"],
)
def test_external_data_anywhere_is_refused_with_where_it_is(model: bytes, where: str) -> None:
    with pytest.raises(ModelError) as caught:
        refuse_external_data(model)
    assert caught.value.reason.startswith("model uses external data (")
    assert where in caught.value.reason


def test_self_contained_models_pass() -> None:
    refuse_external_data(build_demo_model())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_main_graph_initializer_in_a_file_is_refused_before_a_session(
    runner: OnnxRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / SECRET).write_bytes(np.arange(4, dtype=np.float32).tobytes())
    monkeypatch.chdir(tmp_path)
    model = main_graph_model()
    with pytest.raises(ModelError, match=r"external data \(initializer 'w' in the main graph\)"):
        runner.run(model, _sha(model), np.zeros(4, np.float32))


def test_a_subgraph_initializer_in_a_fifo_is_refused_and_the_fifo_never_opened(
    runner: OnnxRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """onnxruntime reads an If branch's external initializer from the working directory
    (today it would block opening this FIFO, or return the file's numbers as output)."""
    fifo = tmp_path / SECRET
    os.mkfifo(fifo)
    monkeypatch.chdir(tmp_path)
    model = if_model()
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            runner.run(model, _sha(model), np.zeros(4, np.float32))
            outcome.append(None)
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    blocked = thread.is_alive()
    if blocked:  # release the reader stuck opening the FIFO, then fail
        os.close(os.open(fifo, os.O_WRONLY))
        thread.join(timeout=30)
    assert not blocked, "the model's external file was opened"
    [error] = outcome
    assert isinstance(error, ModelError) and "external data" in error.reason
    with pytest.raises(OSError):  # ENXIO: nobody has the FIFO open for reading
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
