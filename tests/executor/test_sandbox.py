"""A work process holds nothing a model could reach by a relative path, and a run that keeps
the CPU busy past its CPU-time bound dies with a reason that says so."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from executor.demo_model import build_demo_model
from executor.roots import StorageRoots
from executor.runtime import OnnxRunner
from executor.sandbox import Sandbox, WorkRequest
from streams.messages import ModelRef, WorkItem
from tests.executor.hostile_models import FOREVER, runaway_loop_model

MIB = 1024 * 1024


def _request(
    tmp_path: Path, model: bytes, cpu_s: float | None = None, rows: np.ndarray | None = None
) -> WorkRequest:
    model_path, input_path = tmp_path / "m.onnx", tmp_path / "in.npy"
    model_path.write_bytes(model)
    rows = np.ones((2, 4), np.float32) if rows is None else rows
    np.save(input_path, rows, allow_pickle=False)
    item = WorkItem(
        work_id="w-1",
        job_id="job-1",
        shard_index=0,
        model=ModelRef(uri=model_path.as_uri(), sha256=hashlib.sha256(model).hexdigest()),
        input_uri=str(input_path),
        output_uri=str(tmp_path / "out"),
    )
    roots = StorageRoots((tmp_path,), (tmp_path,), (tmp_path,))
    return WorkRequest(item, "car-1", 64 * MIB, MIB, 0, roots, cpu_s)


def test_the_work_process_runs_in_an_empty_directory_it_cannot_write_removed_after(
    tmp_path: Path,
) -> None:
    sandbox = Sandbox(OnnxRunner(intra_op_threads=1), None)
    try:
        reply = sandbox.run(_request(tmp_path, build_demo_model()), lambda: None, 5.0)
        assert reply.status == "done", reply.reason
        cwd = Path(os.readlink(f"/proc/{sandbox.pid}/cwd"))
        assert cwd == Path(sandbox.workdir).resolve() and not any(cwd.iterdir())
        assert cwd.stat().st_mode & 0o777 == 0o500
    finally:
        sandbox.close()
    assert not cwd.exists()


def test_a_run_past_its_cpu_time_bound_dies_and_says_so(tmp_path: Path) -> None:
    sandbox = Sandbox(OnnxRunner(intra_op_threads=1), None)
    rows = np.full((2, 4), FOREVER, np.float32)  # a Loop of 10^15 iterations, never asked to stop
    try:
        request = _request(tmp_path, runaway_loop_model(), cpu_s=1.0, rows=rows)
        reply = sandbox.run(request, lambda: None, 5.0)
    finally:
        sandbox.close()
    assert reply.status == "failed" and reply.reason is not None
    assert reply.reason.startswith("the work process died (signal SIGXCPU")
    assert "exceeded its CPU-time bound" in reply.reason
