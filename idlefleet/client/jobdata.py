"""A submitter's job data in the store: sealed on the way up, checked and opened on the way down.

Up (`upload_job`): the model and each input shard go to `<store url>/jobs/<job id>/`. With
sealing (the default), a fresh job key seals every shard under its own derived key (and the
model too unless it is public), the key is wrapped to the service's enrolled key, and a copy
is kept on this machine (`JobKeys`, mode 0600) to open the results. The store then holds only
ciphertext and sha256s.

Down (`download_outputs`): for each shard, the first accepted output whose stored bytes hash
to what its result reported and open under the shard's key; the arrays are joined in shard
order.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from executor.errors import ExecutionError, StoreError
from executor.objects import ObjectStore
from executor.storage import npy_bytes, parse_npy
from streams.identity import key_id_of, write_private
from streams.messages import ModelRef, WrappedKey
from streams.sealing import (
    OVERHEAD_BYTES,
    SealError,
    job_key_context,
    model_key,
    new_job_key,
    open_sealed,
    part_context,
    seal,
    shard_key,
    wrap_key,
)

#: Told the bytes [bytes] just sent or received.
Progress = Callable[[int], None]
#: Largest output object fetched back [bytes].
MAX_OUTPUT_BYTES = 256 * 1024 * 1024


class JobDataError(ValueError):
    """Job data that cannot go up or come down; `reason` is one line."""


@dataclass(frozen=True)
class ServiceKey:
    """The enrolled service key a job key is wrapped to."""

    key_id: str
    agreement_public_key: bytes

    @classmethod
    def checked(cls, key_id: str, signing_hex: str, agreement_hex: str) -> ServiceKey:
        """A service key as the API lists it, refused unless its id is derived from its keys."""
        try:
            signing, agreement = bytes.fromhex(signing_hex), bytes.fromhex(agreement_hex)
        except ValueError:
            raise JobDataError(f"service key {key_id} has malformed public keys") from None
        if len(agreement) != 32 or key_id_of(signing, agreement) != key_id:
            raise JobDataError(f"service key {key_id} does not match its public keys")
        return cls(key_id, agreement)


@dataclass(frozen=True)
class UploadedJob:
    """What a job names after its data is in the store."""

    model: ModelRef
    input_uris: list[str]
    input_sha256s: list[str]
    output_uri: str
    data_key: WrappedKey | None
    job_key: bytes | None = field(repr=False)
    bytes_sent: int


def job_prefix(store_url: str, job_id: str) -> str:
    """Where a job's objects go: `<store url>/jobs/<job id>`."""
    return f"{store_url.rstrip('/')}/jobs/{job_id}"


def new_job_id(now: datetime | None = None) -> str:
    """`job-<UTC time>-<8 hex>`: sortable by submission, unlikely to collide."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"job-{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def upload_job(
    store: ObjectStore,
    store_url: str,
    job_id: str,
    model_bytes: bytes,
    inputs: Sequence[np.ndarray],
    *,
    service_key: ServiceKey | None,
    public_model: bool = False,
    progress: Progress | None = None,
    workers: int = 4,
) -> UploadedJob:
    """Put the model and the input shards (`inputs`, one array each) in the store; sealed
    unless `service_key` is None.

    Shards are sealed and uploaded `workers` at a time; `progress` is told each object's
    bytes once it is stored.
    """
    prefix = job_prefix(store_url, job_id)
    job_key = None if service_key is None else new_job_key()
    sealed_model = job_key is not None and not public_model
    stored_model = (
        seal(model_key(job_key, job_id), model_bytes, part_context(job_id, "model"))
        if sealed_model and job_key is not None
        else model_bytes
    )
    model_uri = f"{prefix}/model.onnx" + (".sealed" if sealed_model else "")
    _put(store, model_uri, stored_model, progress)

    def put_shard(index_and_rows: tuple[int, np.ndarray]) -> tuple[str, str, int]:
        index, rows = index_and_rows
        data = npy_bytes(rows, job_id, index)
        if job_key is not None:
            data = seal(
                shard_key(job_key, job_id, index), data, part_context(job_id, "input", index)
            )
        uri = f"{prefix}/inputs/shard-{index:06d}.npy" + (".sealed" if job_key else "")
        _put(store, uri, data, progress)
        return uri, hashlib.sha256(data).hexdigest(), len(data)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        stored = list(pool.map(put_shard, enumerate(inputs)))
    data_key = None
    if job_key is not None and service_key is not None:
        data_key = wrap_key(
            job_key,
            service_key.key_id,
            service_key.agreement_public_key,
            job_key_context(job_id),
        )
    return UploadedJob(
        model=ModelRef(
            uri=model_uri, sha256=hashlib.sha256(stored_model).hexdigest(), sealed=sealed_model
        ),
        input_uris=[uri for uri, _, _ in stored],
        input_sha256s=[sha for _, sha, _ in stored],
        output_uri=f"{prefix}/outputs",
        data_key=data_key,
        job_key=job_key,
        bytes_sent=len(stored_model) + sum(size for _, _, size in stored),
    )


def _put(store: ObjectStore, uri: str, data: bytes, progress: Progress | None) -> None:
    try:
        store.put(uri, data)
    except StoreError as exc:
        raise JobDataError(f"cannot upload {uri}: {exc.reason}") from exc
    if progress is not None:
        progress(len(data))


@dataclass(frozen=True)
class ShardOutputRef:
    """One accepted output as the service reports it."""

    shard_index: int
    vehicle_id: str
    output_uri: str
    output_sha256: str


def download_outputs(
    store: ObjectStore,
    job_id: str,
    shard_total: int,
    outputs: Sequence[ShardOutputRef],
    job_key: bytes | None,
    *,
    progress: Progress | None = None,
    workers: int = 4,
) -> np.ndarray:
    """Every shard's output, checked and opened, joined along the first axis in shard order.

    JobDataError naming the shards that have no accepted output yet, or none that checks.
    """
    by_shard: dict[int, list[ShardOutputRef]] = {}
    for output in outputs:
        by_shard.setdefault(output.shard_index, []).append(output)
    missing = [i for i in range(shard_total) if i not in by_shard]
    if missing:
        raise JobDataError(
            f"{len(missing)} of {shard_total} shards have no accepted output yet "
            f"(first: {_first(missing)}); wait for the job to finish (`idlefleet jobs watch`)"
        )

    def fetch(index: int) -> np.ndarray | str:
        reasons = []
        for output in by_shard[index]:
            try:
                array = _opened_output(store, job_id, output, job_key)
            except ExecutionError as exc:
                reasons.append(f"{output.vehicle_id}: {exc.reason}")
                continue
            if progress is not None:
                progress(1)
            return array
        return "; ".join(reasons)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        fetched = list(pool.map(fetch, range(shard_total)))
    failed = {i: why for i, why in enumerate(fetched) if isinstance(why, str)}
    if failed:
        index, why = next(iter(failed.items()))
        raise JobDataError(
            f"{len(failed)} shards have no output that checks (shard {index}: {why})"
        )
    return np.concatenate([a for a in fetched if isinstance(a, np.ndarray)], axis=0)


def _opened_output(
    store: ObjectStore, job_id: str, output: ShardOutputRef, job_key: bytes | None
) -> np.ndarray:
    data = store.get(output.output_uri, MAX_OUTPUT_BYTES + OVERHEAD_BYTES)
    actual = hashlib.sha256(data).hexdigest()
    if actual != output.output_sha256:
        raise StoreError(f"sha256 mismatch: expected {output.output_sha256}, got {actual}")
    source = f"output of shard {output.shard_index}"
    if job_key is not None:
        context = part_context(job_id, "output", output.shard_index)
        try:
            data = open_sealed(shard_key(job_key, job_id, output.shard_index), data, context)
        except SealError as exc:
            raise StoreError(exc.reason) from exc
    return parse_npy(data, source, StoreError)


def _first(indices: list[int], shown: int = 5) -> str:
    head = ", ".join(map(str, indices[:shown]))
    return head + (", ..." if len(indices) > shown else "")


class JobKeys:
    """Job keys kept on the submitter's machine, one file per job (mode 0600), to open
    results with."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, job_id: str) -> Path:
        if "/" in job_id or job_id.startswith("."):
            raise JobDataError(f"job id {job_id!r} cannot name a key file")
        return self.directory / f"{job_id}.key"

    def save(self, job_id: str, key: bytes) -> Path:
        path = self.path(job_id)
        try:
            write_private(path, (key.hex() + "\n").encode())
        except FileExistsError:
            raise JobDataError(f"a key for job {job_id} already exists at {path}") from None
        return path

    def load(self, job_id: str) -> bytes:
        path = self.path(job_id)
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            raise JobDataError(
                f"no key for job {job_id} in {self.directory}: results of a sealed job open "
                "only where it was submitted (or copy its .key file here)"
            ) from None
        if path.stat().st_mode & 0o077:
            raise JobDataError(f"{path} is readable by others: chmod 600 it")
        try:
            key = bytes.fromhex(text)
        except ValueError:
            raise JobDataError(f"{path} does not hold a hex key") from None
        if len(key) != 32:
            raise JobDataError(f"{path} holds {len(key)} bytes, not a 32-byte job key")
        return key
