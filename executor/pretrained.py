"""A real pre-trained model that ships inside a PyPI wheel: Google's Magika file-type classifier.

Magika (pip `magika`, Apache-2.0) bundles its ONNX model and config in the wheel. This module
finds them without importing magika's Python API, turns file bytes into the model's input
(the first and last bytes of the content, whitespace-stripped and padded, as magika's
config says) and names the predicted content types. The agent runs the model like any
other job model: by URI and sha256, through `OnnxRunner`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from executor.errors import ModelError

MAGIKA_MODEL_NAME = "standard_v3_3"


@dataclass(frozen=True)
class MagikaModel:
    """Where Magika's model is and how its input is built."""

    path: Path
    sha256: str
    beg_size: int
    end_size: int
    block_size: int
    padding_token: int
    labels: tuple[str, ...]

    @property
    def feature_size(self) -> int:
        return self.beg_size + self.end_size


def find_magika_model(name: str = MAGIKA_MODEL_NAME) -> MagikaModel:
    """The model bundled with the installed magika wheel; ModelError if there is none."""
    spec = importlib.util.find_spec("magika")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("magika is not installed (pip install 'idlefleet[models]')")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    model_path = folder / "model.onnx"
    config_path = folder / "config.min.json"
    if not model_path.is_file() or not config_path.is_file():
        raise ModelError(f"magika model {name!r} not found in {folder}")
    config = json.loads(config_path.read_text())
    if config.get("mid_size", 0) or config.get("use_inputs_at_offsets", False):
        raise ModelError(f"magika model {name!r} needs input features this module does not build")
    return MagikaModel(
        path=model_path,
        sha256=hashlib.sha256(model_path.read_bytes()).hexdigest(),
        beg_size=int(config["beg_size"]),
        end_size=int(config["end_size"]),
        block_size=int(config["block_size"]),
        padding_token=int(config["padding_token"]),
        labels=tuple(config["target_labels_space"]),
    )


def magika_features(content: bytes, model: MagikaModel) -> np.ndarray:
    """Model input for one file's bytes: int32 [beg_size + end_size], byte values or padding.

    The first `block_size` bytes, left-stripped of whitespace, give the first `beg_size`
    values (padded after); the last `block_size` bytes, right-stripped, give the last
    `end_size` values (padded before).
    """
    beg = list(content[: model.block_size].lstrip()[: model.beg_size])
    beg += [model.padding_token] * (model.beg_size - len(beg))
    tail = content[-model.block_size :].rstrip() if content else b""
    end = list(tail[-model.end_size :]) if model.end_size else []
    end = [model.padding_token] * (model.end_size - len(end)) + end
    return np.asarray(beg + end, dtype=np.int32)


def magika_labels(scores: np.ndarray, model: MagikaModel) -> list[str]:
    """The most likely content type of each row of model output [batch, labels]."""
    if scores.ndim != 2 or scores.shape[1] != len(model.labels):
        raise ModelError(f"expected scores of shape (n, {len(model.labels)}), got {scores.shape}")
    return [model.labels[i] for i in np.argmax(scores, axis=1)]


def main(argv: list[str] | None = None) -> int:
    """`python -m executor.pretrained path` prints where Magika's model is;
    `python -m executor.pretrained features FILE|DIR ... --out FEATURES.npy` writes the model's
    input for every file named (directories: every file below them, in path order), one row
    each, and prints the files in row order; `python -m executor.pretrained labels SCORES.npy`
    prints the content type of each row of the model's output."""
    parser = argparse.ArgumentParser(prog="python -m executor.pretrained")
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("path", help="print the path of Magika's model.onnx")
    features = verbs.add_parser("features", help="Magika's input rows for files")
    features.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR")
    features.add_argument("--out", type=Path, required=True, metavar="FEATURES.npy")
    labels = verbs.add_parser("labels", help="the content type of each row of model output")
    labels.add_argument("scores", type=Path, metavar="SCORES.npy")
    args = parser.parse_args(argv)
    model = find_magika_model()
    if args.verb == "path":
        print(model.path)
        return 0
    if args.verb == "labels":
        for label in magika_labels(np.load(args.scores, allow_pickle=False), model):
            print(label)
        return 0
    files = [
        found
        for path in args.paths
        for found in (
            sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        )
    ]
    if not files:
        parser.error("no files found")
    rows = np.stack([magika_features(path.read_bytes(), model) for path in files])
    np.save(args.out, rows, allow_pickle=False)
    for path in files:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
