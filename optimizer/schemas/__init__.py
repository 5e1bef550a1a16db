"""The contract's JSON Schemas (scenario and plan, versions 1 and 2), shipped with the package.

``docs/`` holds published copies; ``python -m optimizer.schemas docs/`` writes them and a
test checks they match these byte for byte.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SCHEMAS = (
    "scenario-v1.schema.json",
    "plan-v1.schema.json",
    "scenario-v2.schema.json",
    "plan-v2.schema.json",
)


def schema_text(name: str) -> str:
    """The packaged schema file ``name`` as text."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def publish(directory: Path) -> None:
    """Write every packaged schema into ``directory``."""
    for name in SCHEMAS:
        (directory / name).write_text(schema_text(name), encoding="utf-8")
