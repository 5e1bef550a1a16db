"""A job's input as its submitter has it: one `.npy` array or a directory of them, cut into
shards along the first axis, and checked against the model's input signature before any
byte is uploaded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper


class InputsError(ValueError):
    """Inputs that cannot make a job: unreadable, mixed shapes, or not what the model takes."""


@dataclass(frozen=True)
class ModelSignature:
    """A model's single input: its name, dtype and dimensions (int: fixed; str/None: any)."""

    name: str
    dtype: np.dtype
    dims: tuple[int | str | None, ...]

    def describe(self) -> str:
        shown = ", ".join("?" if not isinstance(d, int) else str(d) for d in self.dims)
        return f"{self.name!r} {self.dtype}[{shown}]"


def model_signature(model_bytes: bytes) -> ModelSignature:
    """The input signature of an ONNX model; InputsError when it has not exactly one input."""
    try:
        model = onnx.load_model_from_string(model_bytes)
    except Exception as exc:  # onnx raises its own DecodeError and others
        raise InputsError(f"the model is not a readable ONNX file: {exc}") from exc
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise InputsError(f"the model has {len(inputs)} inputs; a job feeds exactly one")
    tensor = inputs[0].type.tensor_type
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    except (KeyError, TypeError) as exc:
        raise InputsError(f"the model's input has an unsupported element type: {exc}") from exc
    dims: list[int | str | None] = []
    for dim in tensor.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or None)
    return ModelSignature(inputs[0].name, dtype, tuple(dims))


def load_inputs(path: Path) -> np.ndarray:
    """The rows to run: one `.npy` file, or every `*.npy` file of a directory joined along
    the first axis in file-name order. Never unpickles."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".npy" and p.is_file())
        if not files:
            raise InputsError(f"{path} holds no .npy files")
        arrays = [_load(file) for file in files]
        first = arrays[0]
        for file, array in zip(files, arrays, strict=True):
            if array.shape[1:] != first.shape[1:] or array.dtype != first.dtype:
                raise InputsError(
                    f"{file.name} is {array.dtype}{list(array.shape)}, but {files[0].name} is "
                    f"{first.dtype}{list(first.shape)}: rows must share dtype and trailing shape"
                )
        return np.concatenate(arrays, axis=0)
    return _load(path)


def _load(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputsError(f"{path} does not exist") from None
    except (ValueError, OSError) as exc:
        raise InputsError(f"{path} is not a plain .npy array: {exc}") from exc
    if not isinstance(array, np.ndarray) or array.ndim == 0:
        raise InputsError(f"{path} holds no rows (a job cuts its input along the first axis)")
    return array


def check_fits(array: np.ndarray, signature: ModelSignature, rows_per_shard: int) -> None:
    """InputsError unless shards of `rows_per_shard` rows of `array` fit the model's input."""
    if array.dtype != signature.dtype:
        raise InputsError(
            f"the inputs are {array.dtype}, the model's input {signature.describe()} takes "
            f"{signature.dtype}"
        )
    if array.ndim != len(signature.dims):
        raise InputsError(
            f"the inputs have rank {array.ndim} {list(array.shape)}, the model's input "
            f"{signature.describe()} has rank {len(signature.dims)}"
        )
    rows = signature.dims[0] if signature.dims else None
    if isinstance(rows, int) and rows > 0 and (rows_per_shard != rows or len(array) % rows):
        raise InputsError(
            f"the model's input {signature.describe()} takes exactly {rows} rows: use "
            f"--rows-per-shard {rows} with a row count that is a multiple of it"
        )
    for axis, (want, got) in enumerate(zip(signature.dims[1:], array.shape[1:], strict=True), 1):
        if isinstance(want, int) and want > 0 and want != got:
            raise InputsError(
                f"the inputs are {list(array.shape)}, the model's input {signature.describe()} "
                f"needs dimension {axis} to be {want}"
            )


def shards(array: np.ndarray, rows_per_shard: int) -> Iterator[np.ndarray]:
    """`array` cut along its first axis into shards of `rows_per_shard` rows (the last may
    hold fewer)."""
    if rows_per_shard < 1:
        raise InputsError(f"--rows-per-shard must be at least 1, not {rows_per_shard}")
    for first in range(0, len(array), rows_per_shard):
        yield array[first : first + rows_per_shard]


def shard_count(rows: int, rows_per_shard: int) -> int:
    return -(-rows // rows_per_shard)
