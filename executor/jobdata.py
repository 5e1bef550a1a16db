"""Where a work item's data comes from and where its output goes, in the car's work process.

- Fetched: the assignment gives lease-bounded (presigned) or public HTTP(S) URLs; the car
  holds no store credentials. Bytes are checked against the sha256 the job promised before
  anything else reads them (`executor.transfer`).
- Local: a path or `file://` URI inside the agent's roots (`executor.storage`), for runs on
  one machine.

Sealed job data (`streams.sealing`) is opened in memory with the keys the agent unwrapped
for this item, so a sealed job's plaintext inputs and outputs never touch the car's disk.
Models fetched over HTTP are kept as stored (a sealed one still sealed) in a `ModelCache`
on disk, by sha256, within a size budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from executor.errors import InputError, ModelError, OutputError, StoreError
from executor.storage import (
    VerifiedModels,
    npy_bytes,
    parse_npy,
    read_input_bytes,
    write_output_bytes,
)
from executor.transfer import download, download_into, upload
from streams.identity import write_private
from streams.messages import WorkItem
from streams.sealing import (
    OVERHEAD_BYTES,
    SealedReader,
    SealError,
    open_sealed,
    part_context,
    seal,
)


@dataclass(frozen=True)
class ItemKeys:
    """The keys the agent unwrapped for one item; they live in memory only."""

    shard: bytes | None = field(default=None, repr=False)
    model: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ModelCacheConfig:
    """Where fetched models are kept, and how many bytes they may take there in all."""

    directory: Path
    budget_bytes: int = 2 * 1024**3


class ModelCache:
    """Stored model objects by sha256, at most `budget_bytes` [bytes] in all; the least
    recently used are removed first. A file whose bytes no longer hash to its name is
    dropped, never used."""

    def __init__(self, config: ModelCacheConfig) -> None:
        self.directory = config.directory
        self.budget_bytes = config.budget_bytes
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def get(self, sha256: str) -> bytes | None:
        """The cached object hashing to `sha256`, or None."""
        path = self.directory / sha256
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        os.utime(path)  # recently used
        return data

    def put(self, sha256: str, data: bytes) -> None:
        """Keep `data` (which hashes to `sha256`), then shrink the cache to its budget."""
        if len(data) > self.budget_bytes:
            return
        temporary = self.directory / f".tmp-{secrets.token_hex(8)}"
        with self._lock:
            write_private(temporary, data)
            temporary.replace(self.directory / sha256)
            self._shrink()

    def _shrink(self) -> None:
        entries = []
        for path in self.directory.iterdir():
            if path.name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):
                info = path.stat()
                entries.append((info.st_mtime_ns, info.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.budget_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size


class ItemData:
    """Fetches, checks and opens work items' models and inputs, and puts their outputs.

    One per work process: it keeps verified local models (`VerifiedModels`), fetched models
    on disk (`ModelCache`, when configured) and at most `max_models` opened models in memory.
    """

    def __init__(self, max_models: int = 8) -> None:
        self.local_models = VerifiedModels(max_models)
        self.max_models = max_models
        self._opened: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._caches: dict[Path, ModelCache] = {}

    def model(
        self,
        item: WorkItem,
        keys: ItemKeys,
        max_bytes: int,
        model_roots: tuple[Path, ...],
        cache: ModelCacheConfig | None,
    ) -> tuple[bytes, str]:
        """The model's plaintext bytes and their sha256; ModelError when they cannot be had."""
        ref = item.model
        opened = self._opened.get(ref.sha256)
        if opened is not None:
            self._opened.move_to_end(ref.sha256)
            return opened
        url = item.model_url or (ref.uri if _is_http(ref.uri) else None)
        if url is None:
            stored = self.local_models.read(ref, max_bytes, model_roots)
            if not ref.sealed:
                return stored, ref.sha256  # `local_models` keeps it
        else:
            limit = max_bytes + (OVERHEAD_BYTES if ref.sealed else 0)
            stored = self._fetched_model(url, ref.sha256, limit, cache)
        if not ref.sealed:
            opened = (stored, ref.sha256)
        elif keys.model is None:
            raise ModelError("the model is sealed and the assignment gave no key for it")
        else:
            try:
                plain = open_sealed(keys.model, stored, part_context(item.job_id, "model"), "model")
            except SealError as exc:
                raise ModelError(exc.reason) from exc
            opened = (plain, hashlib.sha256(plain).hexdigest())
        self._opened[ref.sha256] = opened
        while len(self._opened) > self.max_models:
            self._opened.popitem(last=False)
        return opened

    def _fetched_model(
        self, url: str, sha256: str, max_bytes: int, cache: ModelCacheConfig | None
    ) -> bytes:
        store = None
        if cache is not None:
            store = self._caches.get(cache.directory)
            if store is None:
                store = self._caches[cache.directory] = ModelCache(cache)
            cached = store.get(sha256)
            if cached is not None:
                return cached
        try:
            data = download(url, max_bytes, expected_sha256=sha256)
        except StoreError as exc:
            raise ModelError(f"model {exc.reason}") from exc
        if store is not None:
            store.put(sha256, data)
        return data

    @staticmethod
    def input(
        item: WorkItem, keys: ItemKeys, max_bytes: int, input_roots: tuple[Path, ...]
    ) -> np.ndarray:
        """The shard's input array; InputError when it cannot be had."""
        source = f"input of {item.job_id} shard {item.shard_index}"
        limit = max_bytes + (0 if keys.shard is None else OVERHEAD_BYTES)
        url = item.input_url or (item.input_uri if _is_http(item.input_uri) else None)
        if url is not None and item.input_sha256 is None:
            raise InputError(f"{source}: the work item names no sha256 for a fetched input")
        if url is not None and keys.shard is not None:
            return _fetch_sealed_input(item, keys.shard, url, limit, source)
        if url is not None:
            try:
                stored = download(url, limit, expected_sha256=item.input_sha256)
            except StoreError as exc:
                raise InputError(f"input {exc.reason}") from exc
        else:
            stored = read_input_bytes(item.input_uri, limit, input_roots)
            actual = hashlib.sha256(stored).hexdigest()
            if item.input_sha256 is not None and actual != item.input_sha256:
                raise InputError(
                    f"{source} sha256 mismatch: expected {item.input_sha256}, got {actual}"
                )
        if keys.shard is None:
            return parse_npy(stored, source)
        context = part_context(item.job_id, "input", item.shard_index)
        try:
            plain = open_sealed(keys.shard, stored, context, source)
        except SealError as exc:
            raise InputError(exc.reason) from exc
        return parse_npy(plain, source)

    @staticmethod
    def put_output(
        item: WorkItem,
        keys: ItemKeys,
        vehicle_id: str,
        array: np.ndarray,
        output_roots: tuple[Path, ...],
    ) -> tuple[str, str]:
        """Store the output (sealed under the shard key when the job is sealed); return the
        URI it is known by and the sha256 of the stored bytes. OutputError otherwise."""
        data = npy_bytes(array, item.job_id, item.shard_index)
        if keys.shard is not None:
            context = part_context(item.job_id, "output", item.shard_index)
            data = seal(keys.shard, data, context)
        if item.output_url is None:
            return write_output_bytes(
                item.output_uri, item.job_id, item.shard_index, vehicle_id, data, output_roots
            )
        try:
            upload(item.output_url, data)
        except StoreError as exc:
            raise OutputError(f"output {exc.reason}") from exc
        return item.output_uri, hashlib.sha256(data).hexdigest()


def _fetch_sealed_input(
    item: WorkItem, key: bytes, url: str, max_bytes: int, source: str
) -> np.ndarray:
    """A sealed input fetched, checked and opened as it arrives: decrypted chunk by chunk
    while its sha256 is computed in a worker thread, the plaintext used only once both the
    sha256 the job promised and the tag check; then parsed in place (no copy). InputError."""
    reader = SealedReader(key, part_context(item.job_id, "input", item.shard_index), source)
    try:
        download_into(url, max_bytes, reader, expected_sha256=item.input_sha256)
    except StoreError as exc:
        raise InputError(f"input {exc.reason}") from exc
    try:
        plain = reader.finish()
    except SealError as exc:
        raise InputError(exc.reason) from exc
    return parse_npy(plain, source, copy=False)


def _is_http(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://"))
