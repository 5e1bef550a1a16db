"""``python -m optimizer.schemas [DIR]``: publish the JSON Schemas into DIR (default docs)."""

from __future__ import annotations

import sys
from pathlib import Path

from optimizer.schemas import publish

publish(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
