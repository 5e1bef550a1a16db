"""Where models, inputs and outputs live: local paths and `file://` URIs only.

On the car every location must resolve inside its configured roots (`executor.roots`), and
only regular files are read, opened non-blocking, their size checked before reading. Models
are read whole and checked against the sha256 their `ModelRef` promises. Inputs are `.npy`
files parsed without pickle (object arrays are refused before any byte of them is
interpreted). Outputs are `.npy` files whose names are built only from validated ids, written
atomically inside the output directory and returned as a `file://` URI with their sha256;
`read_output_bytes` reads one back for whoever checks it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

import numpy as np

from executor.errors import ExecutionError, InputError, ModelError, OutputError, UriError
from executor.roots import OutsideRootsError, open_anywhere, open_directory, open_regular
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


def _open(
    uri: str, roots: Sequence[Path] | None, what: str, error: type[ExecutionError]
) -> tuple[int, os.stat_result]:
    """A descriptor of the regular file at `uri` inside `roots` (None: anywhere, not through
    a final symlink) and its stat; `error` with a one-line reason otherwise."""
    try:
        path = resolve_uri(uri)
        if roots is None:
            return open_anywhere(path, what)
        return open_regular(path, roots, what)
    except UriError as exc:
        raise error(f"{what} {exc.reason}") from exc
    except ExecutionError as exc:  # outside the roots, or not a regular file
        raise error(exc.reason) from exc
    except FileNotFoundError as exc:
        raise error(f"{what} file not found: {uri}") from exc
    except OSError as exc:
        raise error(f"cannot read {what} {uri}: {exc.strerror}") from exc


def _read(
    fd: int,
    info: os.stat_result,
    max_bytes: int,
    what: str,
    uri: str,
    error: type[ExecutionError],
) -> bytes:
    """The bytes of the open regular file `fd` (closed here), at most `max_bytes` [bytes]."""
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > max_bytes:
            raise error(f"{what} {uri} is {info.st_size} bytes, more than the {max_bytes} allowed")
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise error(f"cannot read {what} {uri}: {exc.strerror}") from exc
    if len(data) > max_bytes:  # grew between stat and read
        raise error(f"{what} {uri} is more than the {max_bytes} bytes allowed")
    return data


def _verified(ref: ModelRef, data: bytes) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != ref.sha256:
        raise ModelError(
            f"model sha256 mismatch for {ref.uri}: expected {ref.sha256}, got {actual}"
        )
    return data


def read_verified_model(ref: ModelRef, max_bytes: int, roots: Sequence[Path]) -> bytes:
    """The model's bytes after checking its place (inside `roots`), size [bytes] and sha256;
    ModelError otherwise."""
    fd, info = _open(ref.uri, roots, "model", ModelError)
    return _verified(ref, _read(fd, info, max_bytes, "model", ref.uri, ModelError))


class VerifiedModels:
    """Model bytes verified once per job model and reused while the file is unchanged.

    A model is read and hashed the first time a `(uri, sha256)` is asked for; later asks
    only open and `fstat` the file and re-verify when its size, mtime or inode moved. Holds
    at most `max_models` models, least recently used dropped first.
    """

    def __init__(self, max_models: int = 8) -> None:
        self.max_models = max_models
        self._models: OrderedDict[tuple[str, str], tuple[tuple[int, int, int, int], bytes]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def read(self, ref: ModelRef, max_bytes: int, roots: Sequence[Path]) -> bytes:
        """The verified bytes of `ref` (at most `max_bytes`, inside `roots`); ModelError when
        they are not."""
        key = (ref.uri, ref.sha256)
        fd, info = _open(ref.uri, roots, "model", ModelError)
        stamp = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        with self._lock:
            cached = self._models.get(key)
            if cached is not None and cached[0] == stamp:
                self._models.move_to_end(key)
                os.close(fd)
                return cached[1]
        data = _verified(ref, _read(fd, info, max_bytes, "model", ref.uri, ModelError))
        with self._lock:
            self._models[key] = (stamp, data)
            self._models.move_to_end(key)
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)
        return data


def parse_npy(
    data: bytes | bytearray,
    source: str = ".npy data",
    error: type[ExecutionError] = InputError,
    *,
    copy: bool = True,
) -> np.ndarray:
    """Parse `.npy` bytes without pickle into a native-endian, C-ordered, aligned array;
    `error` (its reason starting with `source`) when they are not a plain `.npy` array.

    `copy=False` lets the array be a view of `data` when it can (writable when `data` is a
    bytearray): for a caller that hands over a buffer no one else holds or writes."""
    if not data.startswith(_NPY_MAGIC):
        raise error(f"{source} is not a .npy file (bad magic bytes)")
    stream = io.BytesIO(_through_header(data))  # not all of `data`: BytesIO would copy it
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise error(f"{source} uses .npy format {version}; 1.0 or 2.0 expected")
    except (ValueError, TypeError, SyntaxError) as exc:
        raise error(f"{source} has a corrupt .npy header: {exc}") from exc
    if dtype.hasobject:
        raise error(f"{source} holds Python objects (pickled data); refused")
    offset = stream.tell()
    count = math.prod(shape)
    expected_bytes = count * dtype.itemsize
    if len(data) - offset != expected_bytes:
        raise error(
            f"{source} is corrupt: header promises {expected_bytes} bytes of "
            f"{dtype} {tuple(shape)}, file holds {len(data) - offset}"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    array = flat.reshape(shape, order="F" if fortran_order else "C")
    if dtype.byteorder not in ("=", "|"):
        array = array.astype(dtype.newbyteorder("="))
    elif not copy and array.flags.c_contiguous and array.flags.aligned:
        return array
    return np.array(array, order="C", copy=True)


def _through_header(data: bytes | bytearray) -> bytes:
    """The first bytes of `.npy` data, through the end of its header as its length field
    says (all of `data` when that is shorter): magic (6 bytes), version (2), then the header
    length, 2 bytes little-endian in format 1.0, 4 in 2.0 and 3.0."""
    wide = len(data) > 6 and data[6] >= 2
    width = 4 if wide else 2
    length = int.from_bytes(data[8 : 8 + width], "little")
    return bytes(data[: 8 + width + length])


def read_input_bytes(uri: str, max_bytes: int, roots: Sequence[Path] | None = None) -> bytes:
    """The bytes of the regular file at `uri`, at most `max_bytes` [bytes] and inside `roots`
    (None: anywhere, for callers that chose the location); InputError."""
    fd, info = _open(uri, roots, "input", InputError)
    return _read(fd, info, max_bytes, "input", uri, InputError)


def load_input_array(uri: str, max_bytes: int, roots: Sequence[Path] | None = None) -> np.ndarray:
    """The `.npy` array in the regular file at `uri` (see `read_input_bytes`); InputError."""
    return parse_npy(read_input_bytes(uri, max_bytes, roots), f"input {uri}")


def read_output_bytes(uri: str, expected_sha256: str, max_bytes: int) -> bytes:
    """The bytes of the output file a result names, for whoever checks it: the regular file
    at `uri` (opened non-blocking, not through a final symlink), at most `max_bytes` [bytes],
    hashing to `expected_sha256`. OutputError otherwise."""
    fd, info = _open(uri, None, "output", OutputError)
    data = _read(fd, info, max_bytes, "output", uri, OutputError)
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise OutputError(f"output {uri} does not match its sha256 {expected_sha256}")
    return data


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


def output_object_name(job_id: str, shard_index: int, vehicle_id: str, work_id: str) -> str:
    """The name of one execution's output object under a job's output prefix: the local file
    name with a digest of `work_id`, so a re-run never overwrites an output a result names."""
    digest = hashlib.sha256(work_id.encode()).hexdigest()[:16]
    return f"{output_file_name(job_id, shard_index, vehicle_id)[:-4]}_{digest}.npy"


def output_file_name(job_id: str, shard_index: int, vehicle_id: str) -> str:
    """`<job>_shard-<index:06d>_<vehicle>.npy` with ids percent-encoded: no `/`, no `..`."""
    if isinstance(shard_index, bool) or not isinstance(shard_index, int) or shard_index < 0:
        raise OutputError(f"shard_index {shard_index!r} is not a non-negative integer")
    job = _file_component(job_id, "job_id")
    vehicle = _file_component(vehicle_id, "vehicle_id")
    return f"{job}_shard-{shard_index:06d}_{vehicle}.npy"


def npy_bytes(array: np.ndarray, job_id: str, shard_index: int) -> bytes:
    """The `.npy` bytes of a shard's output (no pickle); OutputError when it cannot be saved."""
    buffer = io.BytesIO()
    try:
        np.save(buffer, np.asarray(array), allow_pickle=False)
    except ValueError as exc:
        raise OutputError(f"output of {job_id} shard {shard_index} cannot be saved: {exc}") from exc
    return buffer.getvalue()


def write_output_bytes(
    output_uri: str,
    job_id: str,
    shard_index: int,
    vehicle_id: str,
    data: bytes,
    roots: Sequence[Path],
) -> tuple[str, str]:
    """Write an output's bytes (a `.npy` array, sealed or not) into the directory
    `output_uri`; return (file URI, sha256).

    The directory must resolve inside `roots`; missing directories below its root are
    created. The write is atomic (a new temporary file, then a rename over the name), so a
    reader never sees half an output, re-running a shard replaces its file, and whatever
    stood at the name (a symlink, a FIFO) is replaced, never opened.
    """
    name = output_file_name(job_id, shard_index, vehicle_id)
    try:
        directory = resolve_uri(output_uri)
    except UriError as exc:
        raise OutputError(f"output {exc.reason}") from exc
    try:
        fd, real = open_directory(directory, roots, "output")
    except OutsideRootsError as exc:
        raise OutputError(exc.reason) from exc
    except OSError as exc:
        raise OutputError(f"cannot write output into {output_uri}: {exc.strerror}") from exc
    try:
        _write_atomically(fd, name, data)
    except OSError as exc:
        raise OutputError(f"cannot write output into {output_uri}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    return (real / name).as_uri(), hashlib.sha256(data).hexdigest()


def _write_atomically(directory_fd: int, name: str, data: bytes) -> None:
    """`data` as the file `name` of the open directory: a new temporary file, renamed."""
    temporary = f".tmp-{secrets.token_hex(8)}.npy"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o600, dir_fd=directory_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=directory_fd)
        raise
