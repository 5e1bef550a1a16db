"""Provider choice and the onnxruntime runner, on real CPU sessions."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from executor.demo_model import build_demo_model, demo_reference
from executor.errors import InputError, ModelError
from executor.runtime import PREFERRED_PROVIDERS, OnnxRunner, choose_providers

CPU = "CPUExecutionProvider"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def custom_op_model() -> bytes:
    """A checker-valid graph whose only node is an operator no runtime registers."""
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example.idlefleet")
    graph = helper.make_graph(
        [node],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", 17),
            helper.make_opsetid("com.example.idlefleet", 1),
        ],
        ir_version=8,
    )
    return model.SerializeToString()


def two_input_model() -> bytes:
    node = helper.make_node("Add", ["a", "b"], ["c"])
    graph = helper.make_graph(
        [node],
        "two_inputs",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [2]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def identity_model() -> bytes:
    """A valid one-input model other than the demo: y = x."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def dangling_input_model() -> bytes:
    """A node reads a tensor nothing produces: an invalid graph."""
    node = helper.make_node("Relu", ["nowhere"], ["y"])
    graph = helper.make_graph(
        [node],
        "dangling",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    ).SerializeToString()


# -- provider choice ---------------------------------------------------------------------
def test_only_cpu_available_falls_back_to_cpu() -> None:
    assert choose_providers([CPU]) == [CPU]
    assert choose_providers([]) == [CPU]


def test_providers_are_ordered_best_first_and_non_local_ones_dropped() -> None:
    available = [
        CPU,
        "AzureExecutionProvider",
        "CUDAExecutionProvider",
        "SomeFutureExecutionProvider",
        "TensorrtExecutionProvider",
        "CoreMLExecutionProvider",
    ]
    assert choose_providers(available) == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CoreMLExecutionProvider",
        CPU,
    ]
    assert PREFERRED_PROVIDERS[-1] == CPU


def test_default_runner_requests_only_cpu_on_this_machine() -> None:
    assert OnnxRunner().providers == (CPU,)


def test_runner_refuses_a_provider_this_build_lacks() -> None:
    with pytest.raises(ValueError, match="CUDAExecutionProvider"):
        OnnxRunner(["CUDAExecutionProvider", CPU])


# -- running -----------------------------------------------------------------------------
def test_run_returns_the_embedding_and_confirms_the_cpu_provider(
    runner: OnnxRunner, features: np.ndarray
) -> None:
    data = build_demo_model()
    outcome = runner.run(data, sha(data), features)
    assert outcome.outputs.shape == (3, 8)
    assert outcome.outputs.dtype == np.float32
    assert outcome.provider == CPU
    assert outcome.runtime_s >= 0.0
    np.testing.assert_allclose(outcome.outputs, demo_reference(features), rtol=1e-5, atol=1e-6)


def test_contract_is_read_from_the_session(runner: OnnxRunner) -> None:
    data = build_demo_model()
    contract = runner.contract(data, sha(data))
    assert (contract.input_name, contract.output_name) == ("features", "embedding")
    assert contract.input_dtype == np.float32
    assert contract.input_shape == ("batch", 4)
    assert contract.provider == CPU


def test_sessions_are_cached_by_sha256_and_bounded(features: np.ndarray) -> None:
    runner = OnnxRunner(intra_op_threads=1, max_sessions=1)
    demo, other = build_demo_model(), identity_model()
    first = runner.run(demo, sha(demo), features)
    second = runner.run(demo, sha(demo), features)
    assert runner.cached_models == [sha(demo)]
    np.testing.assert_array_equal(first.outputs, second.outputs)
    np.testing.assert_array_equal(runner.run(other, sha(other), features).outputs, features)
    assert runner.cached_models == [sha(other)]
    runner.contract(demo, sha(demo))
    assert runner.cached_models == [sha(demo)]


def test_bytes_that_do_not_match_the_sha256_are_refused(
    runner: OnnxRunner, features: np.ndarray
) -> None:
    with pytest.raises(ModelError, match=r"expected 0{64}, got [0-9a-f]{64}"):
        runner.run(build_demo_model(), "0" * 64, features)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"definitely not a protobuf" * 10, "cannot load model"),
        (custom_op_model(), "com.example.idlefleet"),
        (dangling_input_model(), "cannot load model"),
        (two_input_model(), "2 inputs (a, b)"),
    ],
    ids=["corrupt-bytes", "custom-domain-op", "invalid-graph", "two-inputs"],
)
def test_models_that_cannot_run_raise_model_error(
    runner: OnnxRunner, features: np.ndarray, data: bytes, needle: str
) -> None:
    with pytest.raises(ModelError) as caught:
        runner.run(data, sha(data), features)
    assert needle in caught.value.reason
    assert "\n" not in caught.value.reason


@pytest.mark.parametrize(
    ("array", "needle"),
    [
        (np.zeros((2, 4), np.float64), "expects dtype float32, got float64"),
        (np.zeros((2, 5), np.float32), "dimension 1 must be 4"),
        (np.zeros(4, np.float32), "expects rank 2 [batch, 4], got rank 1 [4]"),
        (np.zeros((2, 4), np.int64), "expects dtype float32, got int64"),
    ],
    ids=["float64", "width-5", "rank-1", "int64"],
)
def test_inputs_that_break_the_contract_raise_input_error(
    runner: OnnxRunner, array: np.ndarray, needle: str
) -> None:
    data = build_demo_model()
    with pytest.raises(InputError) as caught:
        runner.run(data, sha(data), array)
    assert needle in caught.value.reason


def test_any_batch_size_fits_the_symbolic_dimension(runner: OnnxRunner) -> None:
    data = build_demo_model()
    for batch in (1, 17):
        outcome = runner.run(data, sha(data), np.ones((batch, 4), np.float32))
        assert outcome.outputs.shape == (batch, 8)
