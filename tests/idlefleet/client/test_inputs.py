"""A submitter's inputs: cut into shards, refused before upload when they do not fit the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.demo_model import build_demo_model
from executor.pretrained import find_magika_model
from idlefleet.client.inputs import (
    InputsError,
    check_fits,
    load_inputs,
    model_signature,
    shard_count,
    shards,
)
from idlefleet.client.jobdata import JobDataError, JobKeys, ServiceKey
from streams.identity import Identity


def test_the_signatures_of_real_models_are_read() -> None:
    demo = model_signature(build_demo_model())
    assert demo.dtype == np.float32 and len(demo.dims) == 2 and demo.dims[1] == 4
    magika = find_magika_model()
    signature = model_signature(magika.path.read_bytes())
    assert signature.dtype == np.int32
    assert signature.dims[1:] == (magika.feature_size,)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((8, 4), np.float64), "the inputs are float64, the model's input"),
        (np.zeros((8, 5), np.float32), "needs dimension 1 to be 4"),
        (np.zeros((8, 4, 1), np.float32), "rank 3"),
    ],
)
def test_inputs_that_do_not_fit_the_model_are_refused(array: np.ndarray, message: str) -> None:
    with pytest.raises(InputsError, match=message):
        check_fits(array, model_signature(build_demo_model()), 4)


def test_a_directory_of_arrays_is_joined_in_name_order(tmp_path: Path) -> None:
    np.save(tmp_path / "b.npy", np.full((2, 4), 2, np.float32))
    np.save(tmp_path / "a.npy", np.full((3, 4), 1, np.float32))
    (tmp_path / "notes.txt").write_text("ignored")
    joined = load_inputs(tmp_path)
    assert joined.shape == (5, 4) and joined[0, 0] == 1 and joined[-1, 0] == 2
    np.save(tmp_path / "c.npy", np.zeros((2, 3), np.float32))
    with pytest.raises(InputsError, match=r"c\.npy is float32\[2, 3\]"):
        load_inputs(tmp_path)


def test_pickled_or_missing_inputs_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputsError, match=r"not a plain \.npy array"):
        load_inputs(tmp_path / "objects.npy")
    with pytest.raises(InputsError, match="does not exist"):
        load_inputs(tmp_path / "missing.npy")


@given(st.integers(1, 500), st.integers(1, 64))
def test_shards_cover_every_row_once_in_order(rows: int, per_shard: int) -> None:
    array = np.arange(rows)
    cut = list(shards(array, per_shard))
    assert len(cut) == shard_count(rows, per_shard)
    assert np.array_equal(np.concatenate(cut), array)
    assert all(len(part) == per_shard for part in cut[:-1])


def test_job_keys_are_private_and_refused_when_loose(tmp_path: Path) -> None:
    keys = JobKeys(tmp_path / "jobs")
    path = keys.save("job-1", bytes(range(32)))
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys.load("job-1") == bytes(range(32))
    with pytest.raises(JobDataError, match="already exists"):
        keys.save("job-1", bytes(32))
    path.chmod(0o644)
    with pytest.raises(JobDataError, match="chmod 600"):
        keys.load("job-1")
    with pytest.raises(JobDataError, match="open only where it was submitted"):
        keys.load("job-2")


def test_a_service_key_must_match_its_key_id() -> None:
    service = Identity.generate("planner", "service")
    other = Identity.generate("planner", "service")
    signing, agreement = service.signing_public_key.hex(), service.agreement_public_key.hex()
    assert ServiceKey.checked(service.key_id, signing, agreement).key_id == service.key_id
    with pytest.raises(JobDataError, match="does not match"):
        ServiceKey.checked(service.key_id, signing, other.agreement_public_key.hex())
