"""The car agent end to end on real CPU sessions: done and failed results, never a raise."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper

from executor.agent import AgentLimits, AgentPool, VehicleAgent
from executor.demo_model import demo_reference
from executor.errors import StoppedError
from executor.runtime import Interrupt, OnnxRunner
from executor.storage import resolve_uri
from idlefleet.sim.clock import SteppedClock
from streams.messages import ModelRef, Result
from tests.executor.conftest import MakeAssignment, MakeItem, WriteModel, WriteNpy

COMPUTE_KW = 0.5
CPU = "CPUExecutionProvider"


class SteppingTimer:
    """A monotonic timer that advances 2 s per reading, so an item's runtime_s is exactly 2."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        self.now_s += 2.0
        return self.now_s


class RefusingCharger:
    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        raise RuntimeError(f"contactor fault at {power_kw} kW")


@pytest.fixture
def agent(runner: OnnxRunner, charger: Any, clock: SteppedClock) -> VehicleAgent:
    return VehicleAgent("car-1", runner, charger, COMPUTE_KW, clock, timer=SteppingTimer())


def custom_op_model() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["features"], ["y"], domain="com.example.idlefleet")],
        "custom",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example.idlefleet", 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8).SerializeToString()


def test_assignment_charges_then_runs_every_item(
    agent: VehicleAgent,
    charger: Any,
    write_npy: WriteNpy,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    features: np.ndarray,
) -> None:
    items = [make_item(input_uri=write_npy(f"in{i}.npy", features + i)) for i in range(2)]
    assignment = make_assignment("car-1", items, power_kw=7.4)

    results = agent.handle(assignment)

    assert charger.calls == [(assignment.slot_start, assignment.slot_end, 7.4)]
    assert [r.status for r in results] == ["done", "done"]
    for i, (item, result) in enumerate(zip(items, results, strict=True)):
        assert (result.work_id, result.job_id, result.shard_index) == (
            item.work_id,
            item.job_id,
            item.shard_index,
        )
        assert (result.assignment_id, result.vehicle_id) == (assignment.assignment_id, "car-1")
        assert result.provider == CPU
        assert result.runtime_s == 2.0
        assert result.energy_kwh == pytest.approx(COMPUTE_KW * 2.0 / 3600)
        assert result.finished_at.tzinfo is not None
        assert result.output_uri is not None
        path = resolve_uri(result.output_uri)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == result.output_sha256
        np.testing.assert_allclose(
            np.load(path, allow_pickle=False), demo_reference(features + i), rtol=1e-5, atol=1e-6
        )


def test_an_empty_assignment_only_charges(
    agent: VehicleAgent, charger: Any, make_assignment: MakeAssignment
) -> None:
    assert agent.handle(make_assignment("car-1", [], power_kw=11.0)) == []
    assert [call[2] for call in charger.calls] == [11.0]


def _bad_items(
    tmp_path: Path,
    demo_ref: ModelRef,
    write_npy: WriteNpy,
    write_model: WriteModel,
    features: np.ndarray,
) -> dict[str, tuple[dict[str, Any], str]]:
    """Per case: WorkItem overrides and a fragment the failed result's reason must hold."""
    good_input = write_npy("good.npy", features)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"rm": "-rf"}], dtype=object), allow_pickle=True)
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(Path(good_input).read_bytes()[:-5])
    big = write_model("big.onnx", b"\0" * 5000)
    return {
        "wrong-sha256": (
            {"model": ModelRef(uri=demo_ref.uri, sha256="a" * 64), "input_uri": good_input},
            f"expected {'a' * 64}, got {demo_ref.sha256}",
        ),
        "corrupt-model": (
            {
                "model": write_model("corrupt.onnx", b"\x08\x07garbage" * 50),
                "input_uri": good_input,
            },
            "cannot load model",
        ),
        "custom-op": (
            {"model": write_model("custom.onnx", custom_op_model()), "input_uri": good_input},
            "com.example.idlefleet:Frobnicate",
        ),
        "oversize-model": ({"model": big, "input_uri": good_input}, "more than the 4096 allowed"),
        "missing-model": (
            {
                "model": ModelRef(uri=str(tmp_path / "gone.onnx"), sha256="b" * 64),
                "input_uri": good_input,
            },
            "model file not found",
        ),
        "float64-input": (
            {"input_uri": write_npy("f64.npy", features.astype(np.float64))},
            "expects dtype float32, got float64",
        ),
        "width-5-input": (
            {"input_uri": write_npy("w5.npy", np.zeros((3, 5), np.float32))},
            "dimension 1 must be 4",
        ),
        "pickled-input": ({"input_uri": str(pickled)}, "pickled"),
        "corrupt-input": ({"input_uri": str(truncated)}, "corrupt"),
        "remote-input": ({"input_uri": "s3://bucket/x.npy"}, "unsupported URI scheme 's3'"),
        "remote-output": (
            {"input_uri": good_input, "output_uri": "gs://bucket/out"},
            "unsupported URI scheme 'gs'",
        ),
    }


BAD_CASES = [
    "wrong-sha256",
    "corrupt-model",
    "custom-op",
    "oversize-model",
    "missing-model",
    "float64-input",
    "width-5-input",
    "pickled-input",
    "corrupt-input",
    "remote-input",
    "remote-output",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_a_bad_item_fails_with_a_reason_and_the_next_item_still_runs(
    case: str,
    runner: OnnxRunner,
    charger: Any,
    clock: SteppedClock,
    tmp_path: Path,
    demo_ref: ModelRef,
    write_npy: WriteNpy,
    write_model: WriteModel,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    features: np.ndarray,
) -> None:
    overrides, fragment = _bad_items(tmp_path, demo_ref, write_npy, write_model, features)[case]
    agent = VehicleAgent(
        "car-1",
        runner,
        charger,
        COMPUTE_KW,
        clock,
        limits=AgentLimits(max_model_bytes=4096, max_input_bytes=4096),
    )
    bad = make_item(**overrides)
    good = make_item(input_uri=write_npy("next.npy", features))

    failed, done = agent.handle(make_assignment("car-1", [bad, good]))

    assert failed.status == "failed"
    assert failed.reason is not None and fragment in failed.reason
    assert "\n" not in failed.reason
    assert failed.output_uri is None and failed.output_sha256 is None
    assert done.status == "done" and done.provider == CPU


def test_failed_items_still_account_their_energy(
    agent: VehicleAgent, make_item: MakeItem, make_assignment: MakeAssignment
) -> None:
    (result,) = agent.handle(make_assignment("car-1", [make_item(input_uri="/nope.npy")]))
    assert result.status == "failed"
    assert result.runtime_s == 2.0
    assert result.energy_kwh == pytest.approx(COMPUTE_KW * 2.0 / 3600)


def test_an_assignment_for_another_vehicle_is_refused(
    agent: VehicleAgent,
    charger: Any,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assignment = make_assignment("car-2", [make_item(input_uri="/x.npy")])
    assert agent.handle(assignment) == []
    assert charger.calls == []
    assert "addressed to car-2" in caplog.text


def test_a_charger_fault_fails_the_work_without_running_it(
    runner: OnnxRunner,
    clock: SteppedClock,
    write_npy: WriteNpy,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    features: np.ndarray,
) -> None:
    agent = VehicleAgent("car-1", runner, RefusingCharger(), COMPUTE_KW, clock)
    item = make_item(input_uri=write_npy("x.npy", features))
    (result,) = agent.handle(make_assignment("car-1", [item]))
    assert result.status == "failed"
    assert result.reason is not None and "contactor fault at 7.0 kW" in result.reason


def test_work_that_cannot_start_before_the_slot_ends_fails(
    agent: VehicleAgent,
    charger: Any,
    clock: SteppedClock,
    write_npy: WriteNpy,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    features: np.ndarray,
) -> None:
    assignment = make_assignment("car-1", [make_item(input_uri=write_npy("x.npy", features))])
    clock.now = assignment.slot_end
    (result,) = agent.handle(assignment)
    assert result.status == "failed"
    assert result.reason == "slot ended before the assignment was handled"
    assert charger.calls == []


def test_agent_needs_an_aware_clock_and_a_sane_compute_power(
    runner: OnnxRunner, charger: Any
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        VehicleAgent("car-1", runner, charger, 0.5, lambda: datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="compute_kw"):
        VehicleAgent("car-1", runner, charger, float("nan"), lambda: datetime.now().astimezone())


def test_pool_routes_by_vehicle_and_ignores_strangers(
    runner: OnnxRunner,
    clock: SteppedClock,
    new_charger: Callable[[], Any],
    write_npy: WriteNpy,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    features: np.ndarray,
) -> None:
    chargers = {vid: new_charger() for vid in ("car-1", "car-2")}
    pool = AgentPool(
        VehicleAgent(vid, runner, chargers[vid], COMPUTE_KW, clock) for vid in chargers
    )
    uri = write_npy("x.npy", features)
    assignments = [
        make_assignment("car-2", [make_item(input_uri=uri)], power_kw=3.0),
        make_assignment("car-9", [make_item(input_uri=uri)]),
        make_assignment("car-1", [make_item(input_uri=uri), make_item(input_uri=uri)], 5.0),
    ]

    results: list[Result] = pool.handle_all(assignments)

    assert [(r.vehicle_id, r.status) for r in results] == [
        ("car-2", "done"),
        ("car-1", "done"),
        ("car-1", "done"),
    ]
    assert [c[2] for c in chargers["car-1"].calls] == [5.0]
    assert [c[2] for c in chargers["car-2"].calls] == [3.0]
    assert len(pool) == 2 and "car-1" in pool and "car-9" not in pool
    with pytest.raises(ValueError, match="already has an agent"):
        pool.add(VehicleAgent("car-1", runner, chargers["car-1"], COMPUTE_KW, clock))


def test_a_stopped_agent_fails_work_without_running_it_until_resumed(
    agent: VehicleAgent,
    write_npy: WriteNpy,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    features: np.ndarray,
) -> None:
    agent.stop("the car departed")
    agent.stop("the car was unplugged")  # the first reason stands
    [stopped] = agent.handle(
        make_assignment("car-1", [make_item(input_uri=write_npy("a.npy", features))])
    )
    assert stopped.status == "failed" and stopped.reason == "stopped: the car departed"
    assert agent.stopped_reason == "the car departed"
    agent.resume()
    assert agent.stopped_reason is None
    [done] = agent.handle(
        make_assignment("car-1", [make_item(input_uri=write_npy("b.npy", features))])
    )
    assert done.status == "done"


def test_work_delivered_again_is_not_run_again(
    agent: VehicleAgent,
    write_npy: WriteNpy,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    features: np.ndarray,
) -> None:
    assignment = make_assignment("car-1", [make_item(input_uri=write_npy("a.npy", features))])
    assert [r.status for r in agent.handle(assignment)] == ["done"]
    assert agent.handle(assignment) == []


def test_chunked_runs_give_the_same_output_and_a_fired_interrupt_stops_at_once(
    runner: OnnxRunner, demo_ref: ModelRef, features: np.ndarray
) -> None:
    model = resolve_uri(demo_ref.uri).read_bytes()
    rows = np.concatenate([features + k for k in range(7)])
    whole = runner.run(model, demo_ref.sha256, rows).outputs
    chunked = runner.run(model, demo_ref.sha256, rows, chunk_rows=3).outputs
    np.testing.assert_array_equal(chunked, whole)
    interrupt = Interrupt()
    interrupt.fire("the car departed")
    with pytest.raises(StoppedError) as stopped:
        runner.run(model, demo_ref.sha256, rows, interrupt=interrupt, chunk_rows=3)
    assert stopped.value.progress_frac == 0.0 and "departed" in stopped.value.reason
