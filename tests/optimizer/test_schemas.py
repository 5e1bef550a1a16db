"""The JSON Schemas published in docs/ are the packaged ones, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.schemas import SCHEMAS, schema_text

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("name", SCHEMAS)
def test_published_schema_matches_the_packaged_one(name: str) -> None:
    published = (DOCS / name).read_text(encoding="utf-8")
    assert published == schema_text(name), "run: python -m optimizer.schemas docs"
