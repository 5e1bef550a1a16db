"""`idlefleet bench optimizer` runs end to end on small sizes and prints its summary line."""

from __future__ import annotations

import re

import pytest

from bench.optimizer import main


def test_the_benchmark_compares_with_the_monolithic_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--cars", "40", "210", "--jobs", "20", "20", "--monolithic-limit", "60"]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert any("milp (exact)" in line for line in out)
    assert any("milp (decomposition" in line for line in out)
    assert sum("monolithic Pyomo: build" in line for line in out) == 2
    assert re.fullmatch(
        r"cars=210 jobs=20 wall_s=[\d.]+ gap=[\d.]+ speedup_vs_monolithic=[\d.]+ "
        r"emissions_vs_immediate=[\d.]+",
        out[-1],
    )
