"""Fixtures for executor tests: the demo model on disk, a CPU runner, charger and clock."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from executor.demo_model import build_demo_model
from executor.errors import OutputError
from executor.runtime import OnnxRunner
from executor.storage import npy_bytes, parse_npy, read_output_bytes, write_output_bytes
from idlefleet.sim.clock import SteppedClock
from streams.messages import Assignment, ModelRef, WorkItem

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SLOT = timedelta(minutes=15)


@dataclass
class RecordingCharger:
    """A charger simulator that remembers every power it was asked to hold."""

    calls: list[tuple[datetime, datetime, float]] = field(default_factory=list)

    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        self.calls.append((slot_start, slot_end, power_kw))


WriteModel = Callable[[str, bytes], ModelRef]
WriteNpy = Callable[[str, np.ndarray], str]
MakeItem = Callable[..., WorkItem]
MakeAssignment = Callable[..., Assignment]


@pytest.fixture
def write_model(tmp_path: Path) -> WriteModel:
    """Write model bytes under tmp_path; a ModelRef with their true sha256."""

    def write(name: str, data: bytes) -> ModelRef:
        path = tmp_path / name
        path.write_bytes(data)
        return ModelRef(uri=path.as_uri(), sha256=hashlib.sha256(data).hexdigest())

    return write


@pytest.fixture
def write_npy(tmp_path: Path) -> WriteNpy:
    """Save an array under tmp_path without pickle; its plain path as URI."""

    def write(name: str, array: np.ndarray) -> str:
        path = tmp_path / name
        np.save(path, array, allow_pickle=False)
        return str(path)

    return write


@pytest.fixture
def demo_model_path(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "demo.onnx"
    path.parent.mkdir()
    path.write_bytes(build_demo_model())
    return path


@pytest.fixture
def demo_ref(demo_model_path: Path) -> ModelRef:
    data = demo_model_path.read_bytes()
    return ModelRef(uri=demo_model_path.as_uri(), sha256=hashlib.sha256(data).hexdigest())


@pytest.fixture(scope="session")
def runner() -> OnnxRunner:
    """One CPU runner for the session, as an agent pool would share it."""
    return OnnxRunner(intra_op_threads=1)


@pytest.fixture
def charger() -> RecordingCharger:
    return RecordingCharger()


@pytest.fixture
def new_charger() -> Callable[[], RecordingCharger]:
    """Makes fresh charger simulators (one per vehicle of a pool)."""
    return RecordingCharger


@pytest.fixture
def clock() -> SteppedClock:
    """A minute into the slot of `make_assignment`; it moves only when a test sets `now`."""
    return SteppedClock(T0 + timedelta(minutes=1))


@pytest.fixture
def features() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)


@pytest.fixture
def make_item(tmp_path: Path, demo_ref: ModelRef) -> MakeItem:
    """A WorkItem for the demo model; override model, input_uri or output_uri."""
    counter = iter(range(10_000))

    def make(
        *, model: ModelRef | None = None, input_uri: str, output_uri: str | None = None
    ) -> WorkItem:
        index = next(counter)
        return WorkItem(
            work_id=f"work-{index}",
            job_id="job-1",
            shard_index=index,
            model=model or demo_ref,
            input_uri=input_uri,
            output_uri=output_uri or str(tmp_path / "out"),
        )

    return make


@pytest.fixture
def make_assignment() -> MakeAssignment:
    """An assignment for the slot [T0, T0 + 15 min)."""

    def make(vehicle_id: str, work: list[WorkItem], power_kw: float = 7.0) -> Assignment:
        return Assignment(
            assignment_id=f"a-{vehicle_id}",
            plan_id="plan-1",
            vehicle_id=vehicle_id,
            slot_start=T0,
            slot_end=T0 + SLOT,
            charge_power_kw=power_kw,
            work=work,
        )

    return make


def write_output_array(
    output_uri: str,
    job_id: str,
    shard_index: int,
    vehicle_id: str,
    array: np.ndarray,
    roots: list[Path] | tuple[Path, ...],
) -> tuple[str, str]:
    """`array` written as a plain output file, as a car's work process writes one."""
    data = npy_bytes(array, job_id, shard_index)
    return write_output_bytes(output_uri, job_id, shard_index, vehicle_id, data, roots)


def read_output(uri: str, expected_sha256: str, max_bytes: int) -> np.ndarray:
    """A plain output file read back and parsed, as the service reads one."""
    return parse_npy(
        read_output_bytes(uri, expected_sha256, max_bytes), f"output {uri}", OutputError
    )
