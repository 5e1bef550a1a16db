"""Generate the Python code of the API's .proto files into idlefleet/proto_gen.

`python -m idlefleet.api.codegen` rewrites the committed code; a test checks that doing so
changes nothing. The .proto files live in proto/idlefleet/ and are compiled as if they were in
idlefleet/proto_gen/, so that the generated modules import each other as
`idlefleet.proto_gen.v1...` (package `idlefleet.v1` on the wire).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto" / "idlefleet"
#: Where the .proto files appear to protoc, and so where the generated modules go.
VIRTUAL_ROOT = "idlefleet/proto_gen"


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (grpcio-tools) into `out_dir`; the generated files, relative to it."""
    from grpc_tools import protoc

    well_known = resources.files("grpc_tools") / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = proto_files()
    args = [
        "grpc_tools.protoc",
        f"-I{VIRTUAL_ROOT}={PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(path) for path in sources),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {', '.join(map(str, sources))}")
    return sorted(
        path.relative_to(out_dir)
        for path in (out_dir / VIRTUAL_ROOT).rglob("*")
        if path.suffix in (".py", ".pyi") and path.name != "__init__.py"
    )


if __name__ == "__main__":
    for generated in generate(REPO_ROOT):
        print(generated)
