"""Roles install apart: an agent needs no solver, the optimizer loads Pyomo only to solve."""

from __future__ import annotations

import subprocess
import sys


def modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_a_car_agent_imports_neither_pyomo_nor_pvlib() -> None:
    loaded = modules_after("import executor.agent, executor.dispatch, streams.consumer")
    assert "onnxruntime" in loaded
    assert not {"pyomo", "highspy", "pvlib", "pandas"} & loaded


def test_the_optimizer_api_imports_pyomo_only_when_solving() -> None:
    assert "pyomo" not in modules_after("import optimizer")
