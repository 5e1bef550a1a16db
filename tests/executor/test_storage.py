"""URIs, verified model reads, pickle-free .npy inputs and contained outputs."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from executor.errors import InputError, ModelError, OutputError, UriError
from executor.storage import (
    VerifiedModels,
    load_input_array,
    output_file_name,
    parse_npy,
    read_verified_model,
    resolve_uri,
)
from streams.messages import ModelRef
from tests.executor.conftest import write_output_array

MIB = 1024 * 1024


# -- URIs --------------------------------------------------------------------------------
def test_plain_paths_and_file_uris_resolve_to_local_paths(tmp_path: Path) -> None:
    target = tmp_path / "with space" / "m.onnx"
    assert resolve_uri(str(target)) == target
    assert resolve_uri(target.as_uri()) == target
    assert resolve_uri("file://localhost" + target.as_uri().removeprefix("file://")) == target
    assert resolve_uri("relative/m.onnx") == Path("relative/m.onnx")


@pytest.mark.parametrize(
    "uri", ["s3://bucket/model.onnx", "https://example.org/m.onnx", "gs://b/x.npy", "ftp://h/x"]
)
def test_remote_schemes_are_refused(uri: str) -> None:
    with pytest.raises(UriError, match="unsupported URI scheme"):
        resolve_uri(uri)


@pytest.mark.parametrize("uri", ["file://otherhost/x.npy", "file:///x.npy?y=1", "", "a\x00b"])
def test_odd_file_uris_are_refused(uri: str) -> None:
    with pytest.raises(UriError):
        resolve_uri(uri)


# -- models ------------------------------------------------------------------------------
def test_verified_model_is_returned_whole(
    demo_ref: ModelRef, demo_model_path: Path, tmp_path: Path
) -> None:
    assert read_verified_model(demo_ref, MIB, [tmp_path]) == demo_model_path.read_bytes()


def test_sha256_mismatch_names_both_hashes(demo_ref: ModelRef, tmp_path: Path) -> None:
    wrong = ModelRef(uri=demo_ref.uri, sha256="f" * 64)
    with pytest.raises(ModelError) as caught:
        read_verified_model(wrong, MIB, [tmp_path])
    assert f"expected {'f' * 64}, got {demo_ref.sha256}" in caught.value.reason


def test_missing_oversize_and_remote_models_are_refused(demo_ref: ModelRef, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        read_verified_model(
            ModelRef(uri=str(tmp_path / "nope.onnx"), sha256="0" * 64), MIB, [tmp_path]
        )
    with pytest.raises(ModelError, match=r"bytes, more than the 100 allowed"):
        read_verified_model(demo_ref, 100, [tmp_path])
    with pytest.raises(ModelError, match="unsupported URI scheme 's3'"):
        read_verified_model(ModelRef(uri="s3://b/m.onnx", sha256="0" * 64), MIB, [tmp_path])


# -- inputs ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
        np.arange(6, dtype=">f4").reshape(2, 3),
        np.zeros((0, 4), np.float32),
    ],
    ids=["c-order", "fortran-order", "big-endian", "empty"],
)
def test_npy_inputs_round_trip_as_native_c_arrays(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "x.npy"
    np.save(path, array, allow_pickle=False)
    loaded = load_input_array(str(path), MIB)
    np.testing.assert_array_equal(loaded, array)
    assert loaded.flags.c_contiguous and loaded.flags.writeable
    assert loaded.dtype.isnative


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
        np.arange(6, dtype=">f4").reshape(2, 3),
        np.zeros((0, 4), np.float32),
        np.array(7, np.int64),
    ],
    ids=["c-order", "fortran-order", "big-endian", "empty", "scalar"],
)
def test_npy_bytes_handed_over_parse_in_place_when_they_can(
    array: np.ndarray, version: tuple[int, int]
) -> None:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version, allow_pickle=False)
    data = buffer.getvalue()
    copied = parse_npy(data)
    in_place = parse_npy(bytearray(data), copy=False)
    for parsed in (copied, in_place):
        np.testing.assert_array_equal(parsed, array)
        assert parsed.flags.c_contiguous and parsed.flags.writeable and parsed.flags.aligned
        assert parsed.dtype.isnative
    assert copied.flags.owndata  # a copy by default: `data` may be shared
    viewed = array.dtype.isnative and not np.isfortran(array)
    assert in_place.flags.owndata is not viewed


def test_an_npy_header_longer_than_the_data_is_corrupt() -> None:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros(2, np.float32), version=(1, 0))
    data = bytearray(buffer.getvalue())
    data[8:10] = (9_000).to_bytes(2, "little")  # the header length field
    for cut in (data, data[:7], data[:6]):
        with pytest.raises(InputError, match=r"corrupt \.npy header"):
            parse_npy(bytearray(cut), copy=False)


def _pickled_object_npy(path: Path) -> None:
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


def _raw_pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps(np.zeros(3)))


def _truncated_npy(path: Path) -> None:
    np.save(path, np.zeros((10, 4), np.float32))
    path.write_bytes(path.read_bytes()[:-7])


def _bad_header(path: Path) -> None:
    np.save(path, np.zeros(2, np.float32))
    data = path.read_bytes()
    path.write_bytes(data[:10] + b"{'descr': <<garbage" + data[29:])


def _npz(path: Path) -> None:
    with path.open("wb") as handle:
        np.savez(handle, x=np.zeros(2))


@pytest.mark.parametrize(
    ("writer", "needle"),
    [
        (_pickled_object_npy, "pickled"),
        (_raw_pickle, "not a .npy file"),
        (_truncated_npy, "is corrupt: header promises 160 bytes"),
        (_bad_header, "corrupt .npy header"),
        (_npz, "not a .npy file"),
    ],
    ids=["object-array", "raw-pickle", "truncated", "bad-header", "npz"],
)
def test_unsafe_or_corrupt_inputs_raise_input_error(
    tmp_path: Path, writer: Callable[[Path], None], needle: str
) -> None:
    path = tmp_path / "x.npy"
    writer(path)
    with pytest.raises(InputError) as caught:
        load_input_array(str(path), MIB)
    assert needle in caught.value.reason


def test_oversize_missing_and_remote_inputs_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.npy"
    np.save(path, np.zeros(1000, np.float32))
    with pytest.raises(InputError, match="more than the 1000 allowed"):
        load_input_array(str(path), 1000)
    with pytest.raises(InputError, match="not found"):
        load_input_array(str(tmp_path / "missing.npy"), MIB)
    with pytest.raises(InputError, match="unsupported URI scheme 'https'"):
        load_input_array("https://example.org/x.npy", MIB)


# -- outputs -----------------------------------------------------------------------------
def test_output_is_written_atomically_with_its_sha256(tmp_path: Path) -> None:
    array = np.arange(8, dtype=np.float32).reshape(2, 4)
    uri, digest = write_output_array(str(tmp_path / "out"), "job-1", 3, "car-7", array, [tmp_path])
    path = resolve_uri(uri)
    assert uri.startswith("file:///")
    assert path == (tmp_path / "out" / "job-1_shard-000003_car-7.npy").resolve()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    np.testing.assert_array_equal(np.load(path, allow_pickle=False), array)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left over


def test_rewriting_a_shard_replaces_its_file(tmp_path: Path) -> None:
    out = (tmp_path / "out").as_uri()
    first = write_output_array(out, "job-1", 0, "car-1", np.zeros(2, np.float32), [tmp_path])
    second = write_output_array(out, "job-1", 0, "car-1", np.ones(2, np.float32), [tmp_path])
    assert first[0] == second[0] and first[1] != second[1]


@pytest.mark.parametrize(
    ("job_id", "vehicle_id"),
    [("../../etc", "car"), ("job", "../../../tmp/x"), ("a/b/..", ".."), ("..", "/abs")],
)
def test_ids_with_separators_stay_inside_the_output_directory(
    tmp_path: Path, job_id: str, vehicle_id: str
) -> None:
    out = tmp_path / "out"
    uri, _ = write_output_array(str(out), job_id, 1, vehicle_id, np.zeros(1), [tmp_path])
    path = resolve_uri(uri)
    assert path.parent == out.resolve()
    assert "/" not in path.name


@pytest.mark.parametrize(
    ("job_id", "shard_index", "vehicle_id"),
    [
        ("job\x00", 0, "car"),
        ("job", 0, "car\\..\\x"),
        ("job", -1, "car"),
        ("", 0, "car"),
        ("job", 0, "c a r"),
        ("job", True, "car"),
    ],
)
def test_invalid_ids_are_refused(job_id: str, shard_index: int, vehicle_id: str) -> None:
    with pytest.raises(OutputError):
        output_file_name(job_id, shard_index, vehicle_id)


def test_long_ids_give_distinct_names_within_file_system_limits() -> None:
    long_a = "tenant/" + "a" * 190
    long_b = "tenant/" + "a" * 189 + "b"
    names = {output_file_name(job, 0, "car") for job in (long_a, long_b)}
    assert len(names) == 2
    assert all(len(name.encode()) < 255 for name in names)


def test_remote_output_and_object_arrays_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="unsupported URI scheme 's3'"):
        write_output_array("s3://bucket/out", "job", 0, "car", np.zeros(1), [tmp_path])
    with pytest.raises(OutputError, match="cannot be saved"):
        write_output_array(
            str(tmp_path), "job", 0, "car", np.array([None], dtype=object), [tmp_path]
        )
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError, match="cannot write output"):
        write_output_array(str(blocker), "job", 0, "car", np.zeros(1), [tmp_path])


def test_a_verified_model_is_reused_until_its_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"first model")
    ref = ModelRef(uri=path.as_uri(), sha256=hashlib.sha256(b"first model").hexdigest())
    models = VerifiedModels()
    assert models.read(ref, 1000, [tmp_path]) == b"first model"
    assert models.read(ref, 1000, [tmp_path]) == b"first model"
    path.write_bytes(b"tampered!!!")  # same size, new content and mtime
    os.utime(path, ns=(1, 1))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        models.read(ref, 1000, [tmp_path])
    path.unlink()
    with pytest.raises(ModelError, match="not found"):
        models.read(ref, 1000, [tmp_path])
