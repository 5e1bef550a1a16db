"""The committed generated code is what protoc makes of the .proto files."""

from __future__ import annotations

from pathlib import Path

from idlefleet.api.codegen import REPO_ROOT, VIRTUAL_ROOT, generate


def test_generated_code_matches_the_proto_files(tmp_path: Path) -> None:
    generated = generate(tmp_path)
    assert {path.name for path in generated} == {
        "fleet_planner_pb2.py",
        "fleet_planner_pb2.pyi",
        "fleet_planner_pb2_grpc.py",
    }
    for path in generated:
        committed = REPO_ROOT / path
        assert committed.read_bytes() == (tmp_path / path).read_bytes(), (
            f"{committed} is stale: run python -m idlefleet.api.codegen"
        )
    committed_files = {
        p.relative_to(REPO_ROOT)
        for p in (REPO_ROOT / VIRTUAL_ROOT).rglob("*_pb2*")
        if p.suffix in (".py", ".pyi")
    }
    assert committed_files == set(generated), "generated files without a .proto"
