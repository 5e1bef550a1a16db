"""The committed code of the vendored .proto files is what protoc makes of them."""

from __future__ import annotations

from pathlib import Path

from idlefleet.bridges.codegen import REPO_ROOT, VIRTUAL_ROOT, generate


def test_generated_code_matches_the_vendored_proto_files(tmp_path: Path) -> None:
    generated = generate(tmp_path)
    assert {path.as_posix() for path in generated} == {
        f"{VIRTUAL_ROOT}/tesla/vehicle_data_pb2.py",
        f"{VIRTUAL_ROOT}/tesla/vehicle_data_pb2.pyi",
    }
    for path in generated:
        committed = REPO_ROOT / path
        assert committed.read_bytes() == (tmp_path / path).read_bytes(), (
            f"{committed} is stale: run python -m idlefleet.bridges.codegen"
        )
    committed_files = {
        p.relative_to(REPO_ROOT)
        for p in (REPO_ROOT / VIRTUAL_ROOT).rglob("*_pb2*")
        if p.suffix in (".py", ".pyi")
    }
    assert committed_files == set(generated), "generated files without a vendored .proto"
