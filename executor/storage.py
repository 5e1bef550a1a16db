"""Where models, inputs and outputs live: local paths and `file://` URIs only.

Models are read whole and checked against the sha256 their `ModelRef` promises. Inputs are
`.npy` files parsed without pickle (object arrays are refused before any byte of them is
interpreted). Outputs are `.npy` files whose names are built only from validated ids, written
atomically inside the output directory and returned as a `file://` URI with their sha256.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

import numpy as np

from executor.errors import InputError, ModelError, OutputError, UriError
from streams.messages import ModelRef

# Same alphabet as `streams.messages.Identifier`.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@/-]{1,200}$")
_NPY_MAGIC = b"\x93NUMPY"
_MAX_COMPONENT_CHARS = 96


def resolve_uri(uri: str) -> Path:
    """The local path a plain path or a `file://` URI names; UriError for anything else.

    Refused: other schemes and hosts, queries and fragments, NUL bytes (literal or
    percent-encoded) and `..` segments (literal or percent-encoded), so a location cannot
    climb out of the directory it names.
    """
    if not uri or "\x00" in uri:
        raise UriError(f"invalid URI {uri!r}: empty or contains a NUL byte")
    parts = urlsplit(uri)
    if parts.scheme == "":
        return _contained(Path(uri), uri)
    if parts.scheme.lower() != "file":
        raise UriError(
            f"unsupported URI scheme {parts.scheme!r} in {uri!r}: only local paths and file:// URIs"
        )
    if parts.netloc not in ("", "localhost"):
        raise UriError(f"file URI {uri!r} names host {parts.netloc!r}: only local files")
    if parts.query or parts.fragment:
        raise UriError(f"file URI {uri!r} has a query or fragment")
    if not parts.path:
        raise UriError(f"file URI {uri!r} has no path")
    return _contained(Path(url2pathname(parts.path)), uri)  # url2pathname percent-decodes once


def _contained(path: Path, uri: str) -> Path:
    if "\x00" in str(path):
        raise UriError(f"invalid URI {uri!r}: contains an encoded NUL byte")
    if ".." in path.parts:
        raise UriError(f"location {uri!r} climbs out of its directory with '..'")
    return path


def _read_bounded(path: Path, max_bytes: int, what: str) -> bytes:
    """The bytes of `path`, refusing files larger than `max_bytes` [bytes]; OSError passes."""
    size_bytes = path.stat().st_size
    if size_bytes > max_bytes:
        raise ValueError(f"{what} {path} is {size_bytes} bytes, more than the {max_bytes} allowed")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew between stat and read
        raise ValueError(f"{what} {path} is more than the {max_bytes} bytes allowed")
    return data


def read_verified_model(ref: ModelRef, max_bytes: int) -> bytes:
    """The model's bytes after checking size [bytes] and sha256; ModelError otherwise."""
    try:
        path = resolve_uri(ref.uri)
        data = _read_bounded(path, max_bytes, "model")
    except UriError as exc:
        raise ModelError(f"model {exc.reason}") from exc
    except FileNotFoundError as exc:
        raise ModelError(f"model file not found: {ref.uri}") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read model {ref.uri}: {exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != ref.sha256:
        raise ModelError(
            f"model sha256 mismatch for {ref.uri}: expected {ref.sha256}, got {actual}"
        )
    return data


class VerifiedModels:
    """Model bytes verified once per job model and reused while the file is unchanged.

    A model is read and hashed the first time a `(uri, sha256)` is asked for; later asks
    only `stat` the file and re-verify when its size, mtime or inode moved. Holds at most
    `max_models` models, least recently used dropped first.
    """

    def __init__(self, max_models: int = 8) -> None:
        self.max_models = max_models
        self._models: OrderedDict[tuple[str, str], tuple[tuple[int, int, int], bytes]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def read(self, ref: ModelRef, max_bytes: int) -> bytes:
        """The verified bytes of `ref` (at most `max_bytes`); ModelError when they are not."""
        key = (ref.uri, ref.sha256)
        try:
            info = resolve_uri(ref.uri).stat()
        except UriError as exc:
            raise ModelError(f"model {exc.reason}") from exc
        except OSError as exc:
            raise ModelError(f"model file not found: {ref.uri}") from exc
        stamp = (info.st_size, info.st_mtime_ns, info.st_ino)
        with self._lock:
            cached = self._models.get(key)
            if cached is not None and cached[0] == stamp:
                self._models.move_to_end(key)
                return cached[1]
        data = read_verified_model(ref, max_bytes)
        with self._lock:
            self._models[key] = (stamp, data)
            self._models.move_to_end(key)
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)
        return data


def parse_npy(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse `.npy` bytes without pickle into a native-endian C-ordered array; InputError."""
    if not data.startswith(_NPY_MAGIC):
        raise InputError(f"input {source} is not a .npy file (bad magic bytes)")
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise InputError(f"input {source} uses .npy format {version}; 1.0 or 2.0 expected")
    except (ValueError, TypeError, SyntaxError) as exc:
        raise InputError(f"input {source} has a corrupt .npy header: {exc}") from exc
    if dtype.hasobject:
        raise InputError(f"input {source} holds Python objects (pickled data); refused")
    offset = stream.tell()
    count = math.prod(shape)
    expected_bytes = count * dtype.itemsize
    if len(data) - offset != expected_bytes:
        raise InputError(
            f"input {source} is corrupt: header promises {expected_bytes} bytes of "
            f"{dtype} {tuple(shape)}, file holds {len(data) - offset}"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    array = flat.reshape(shape, order="F" if fortran_order else "C")
    if dtype.byteorder not in ("=", "|"):
        array = array.astype(dtype.newbyteorder("="))
    return np.array(array, order="C", copy=True)


def load_input_array(uri: str, max_bytes: int) -> np.ndarray:
    """The `.npy` array at `uri`, at most `max_bytes` [bytes] on disk; InputError otherwise."""
    try:
        path = resolve_uri(uri)
        data = _read_bounded(path, max_bytes, "input")
    except UriError as exc:
        raise InputError(f"input {exc.reason}") from exc
    except FileNotFoundError as exc:
        raise InputError(f"input file not found: {uri}") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read input {uri}: {exc}") from exc
    return parse_npy(data, uri)


def _file_component(value: str, field: str) -> str:
    """A validated id made safe as part of one file name (no separators, injective)."""
    if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
        raise OutputError(f"{field} {value!r} is not a valid identifier")
    encoded = quote(value, safe="-._")
    if len(encoded) <= _MAX_COMPONENT_CHARS:
        return encoded
    # Keep file names under common 255-byte limits; the digest keeps them distinct.
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return f"{encoded[: _MAX_COMPONENT_CHARS - 17]}-{digest}"


def output_file_name(job_id: str, shard_index: int, vehicle_id: str) -> str:
    """`<job>_shard-<index:06d>_<vehicle>.npy` with ids percent-encoded: no `/`, no `..`."""
    if isinstance(shard_index, bool) or not isinstance(shard_index, int) or shard_index < 0:
        raise OutputError(f"shard_index {shard_index!r} is not a non-negative integer")
    job = _file_component(job_id, "job_id")
    vehicle = _file_component(vehicle_id, "vehicle_id")
    return f"{job}_shard-{shard_index:06d}_{vehicle}.npy"


def write_output_array(
    output_uri: str, job_id: str, shard_index: int, vehicle_id: str, array: np.ndarray
) -> tuple[str, str]:
    """Write `array` as `.npy` into the directory `output_uri`; return (file URI, sha256).

    The directory is created if missing. The write is atomic (temporary file, then rename),
    so a reader never sees half an output, and re-running a shard replaces its file.
    """
    name = output_file_name(job_id, shard_index, vehicle_id)
    try:
        directory = resolve_uri(output_uri)
    except UriError as exc:
        raise OutputError(f"output {exc.reason}") from exc
    buffer = io.BytesIO()
    try:
        np.save(buffer, np.asarray(array), allow_pickle=False)
    except ValueError as exc:
        raise OutputError(f"output of {job_id} shard {shard_index} cannot be saved: {exc}") from exc
    data = buffer.getvalue()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        root = directory.resolve(strict=True)
        target = root / name
        if target.parent != root or Path(os.path.normpath(target)) != target:
            raise OutputError(f"output file {name!r} would leave the directory {root}")
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=root)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    except (OSError, ValueError) as exc:
        raise OutputError(f"cannot write output into {output_uri}: {exc}") from exc
    return target.as_uri(), hashlib.sha256(data).hexdigest()
