"""Generate the Python code of vendored makers' .proto files into idlefleet/bridges/proto_gen.

`python -m idlefleet.bridges.codegen` rewrites the committed code; a test checks that doing so
changes nothing. Each maker's files live unchanged in proto/vendor/<maker>/ (with their
provenance and licence) and are compiled as if they were in
idlefleet/bridges/proto_gen/<maker>/, so the modules import as
`idlefleet.bridges.proto_gen.<maker>.<name>_pb2`. Messages only: no gRPC stubs.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDOR_ROOT = REPO_ROOT / "proto" / "vendor"
#: Where the vendored .proto files appear to protoc, and so where the generated modules go.
VIRTUAL_ROOT = "idlefleet/bridges/proto_gen"
#: Maker directory under proto/vendor -> the vendored files compiled from it.
VENDORED: dict[str, tuple[str, ...]] = {"tesla": ("vehicle_data.proto",)}


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (grpcio-tools) into `out_dir`; the generated files, relative to it."""
    from grpc_tools import protoc

    well_known = resources.files("grpc_tools") / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    for maker, names in VENDORED.items():
        sources = [VENDOR_ROOT / maker / name for name in names]
        args = [
            "grpc_tools.protoc",
            f"-I{VIRTUAL_ROOT}/{maker}={VENDOR_ROOT / maker}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
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
