"""The service's side of job data: each car gets what its lease needs, outputs come back checked.

- **URLs.** For data in an S3 store (`s3://` URIs), each work item gets presigned URLs that
  expire with its lease: GET for its model and input, PUT for its output object. A car holds
  no store credential, and a URL opens one object for one lease.
- **Keys.** A sealed job's key (`Job.data_key`, wrapped to a service key) is unwrapped once
  per job; a car gets only its shard's key (and the model's, when sealed), wrapped to its
  own enrolled key (`streams.sealing`).
- **Outputs.** Each execution's output object is named by the service (`output_object_name`),
  so a car cannot point its result at another car's output. A done result's output is read
  back from where it was told to go (bounded, outside the service's lock), checked against
  its sha256, opened with the shard key and parsed without pickle.

Anything missing (no store configured for an `s3://` job, a job key this service cannot
unwrap, a car with no enrolled key) leaves the item without it: the car then fails it with
the reason, which the results topic carries.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from executor.errors import ExecutionError, OutputError, StoreError
from executor.storage import output_object_name, parse_npy, read_output_bytes
from streams.identity import Identity
from streams.messages import Assignment, Job, Result, WorkItem, WrappedKey
from streams.registry import Registry
from streams.sealing import (
    OVERHEAD_BYTES,
    SealError,
    item_key_context,
    job_key_context,
    model_key,
    open_sealed,
    part_context,
    shard_key,
    unwrap_key,
    wrap_key,
)

if TYPE_CHECKING:
    from executor.objects import ObjectStore

log = logging.getLogger(__name__)

#: Largest output array the service reads back [bytes].
MAX_OUTPUT_BYTES = 256 * 1024 * 1024


def in_store(uri: str) -> bool:
    """Whether `uri` names an object in an S3 store."""
    return uri.startswith("s3://")


def output_object(job: Job, item_or_result: WorkItem | Result, vehicle_id: str) -> str:
    """Where one execution's output object goes under the job's `s3://` output prefix."""
    name = output_object_name(
        job.job_id, item_or_result.shard_index, vehicle_id, item_or_result.work_id
    )
    return f"{job.output_uri.rstrip('/')}/{name}"


class JobData:
    """Prepares work items for their cars and reads their outputs back (thread-safe).

    `store` reaches the jobs' `s3://` objects (None: none configured); `identities` are the
    service's own (they unwrap job keys); `registry` gives each car's enrolled key.
    """

    def __init__(
        self,
        store: ObjectStore | None,
        identities: tuple[Identity, ...] = (),
        registry: Registry | None = None,
    ) -> None:
        self.store = store
        self.identities = identities
        self.registry = registry
        self._job_keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def job_key(self, job: Job) -> bytes:
        """The job's key, unwrapped with the service's keys; SealError when it cannot be."""
        if job.data_key is None:
            raise SealError(f"job {job.job_id} is not sealed")
        with self._lock:
            known = self._job_keys.get(job.job_id)
        if known is not None:
            return known
        key = unwrap_key(job.data_key, self.identities, job_key_context(job.job_id))
        with self._lock:
            self._job_keys[job.job_id] = key
        return key

    def prepare(
        self, assignment: Assignment, jobs: Mapping[str, Job], lease_grace: timedelta
    ) -> Assignment:
        """`assignment` with each item's URLs (valid until its lease ends: slot end plus
        `lease_grace`, counted from the slot's start) and keys for its car."""
        if not assignment.work:
            return assignment
        lease = assignment.slot_end + lease_grace - assignment.slot_start
        work = [
            self._item_for(item, jobs[item.job_id], assignment.vehicle_id, lease)
            for item in assignment.work
        ]
        return assignment.model_copy(update={"work": work})

    def _item_for(self, item: WorkItem, job: Job, vehicle_id: str, lease: timedelta) -> WorkItem:
        update: dict[str, object] = {}
        if in_store(job.output_uri):
            update["output_uri"] = output_object(job, item, vehicle_id)
        if self.store is not None:
            try:
                if in_store(item.model.uri):
                    update["model_url"] = self.store.presign_get(item.model.uri, lease)
                if in_store(item.input_uri):
                    update["input_url"] = self.store.presign_get(item.input_uri, lease)
                if "output_uri" in update:
                    update["output_url"] = self.store.presign_put(str(update["output_uri"]), lease)
            except StoreError as exc:
                log.warning("work %s gets no URL: %s", item.work_id, exc.reason)
        elif in_store(item.input_uri) or in_store(job.output_uri):
            log.warning("work %s names s3:// data and this service has no store", item.work_id)
        if job.data_key is not None:
            update.update(self._keys_for(item, job, vehicle_id))
        return item.model_copy(update=update) if update else item

    def _keys_for(self, item: WorkItem, job: Job, vehicle_id: str) -> dict[str, WrappedKey]:
        car = None if self.registry is None else self.registry.key_of(vehicle_id, "car")
        if car is None:
            log.warning("work %s gets no keys: %s has no enrolled key", item.work_id, vehicle_id)
            return {}
        try:
            key = self.job_key(job)
        except SealError as exc:
            log.warning("work %s gets no keys: %s", item.work_id, exc.reason)
            return {}
        recipient = (car.key_id, bytes.fromhex(car.agreement_public_key))
        index = item.shard_index
        keys = {
            "shard_key": wrap_key(
                shard_key(key, job.job_id, index),
                *recipient,
                item_key_context(job.job_id, "shard", vehicle_id, index),
            )
        }
        if job.model.sealed:
            keys["model_key"] = wrap_key(
                model_key(key, job.job_id),
                *recipient,
                item_key_context(job.job_id, "model", vehicle_id, index),
            )
        return keys

    def output_of(self, result: Result, job: Job | None) -> np.ndarray | ExecutionError | None:
        """A done result's output array, read from where its car was told to put it and
        checked (or why it could not be); None for a failed result."""
        if result.status != "done" or result.output_uri is None or result.output_sha256 is None:
            return None
        if job is None:
            return OutputError(f"job {result.job_id} is not known to this service")
        try:
            return self._read_output(result, job)
        except ExecutionError as exc:
            return exc

    def _read_output(self, result: Result, job: Job) -> np.ndarray:
        uri, sha256 = result.output_uri, result.output_sha256
        assert uri is not None and sha256 is not None
        limit = MAX_OUTPUT_BYTES + (OVERHEAD_BYTES if job.data_key is not None else 0)
        if in_store(job.output_uri):
            expected = output_object(job, result, result.vehicle_id)
            if uri != expected:
                raise OutputError(f"output named {uri}, not the object {expected} it was given")
            if self.store is None:
                raise OutputError(f"output {uri} is in a store and this service has none")
            data = self.store.get(uri, limit)
            if hashlib.sha256(data).hexdigest() != sha256:
                raise OutputError(f"output {uri} does not match its sha256 {sha256}")
        else:
            data = read_output_bytes(uri, sha256, limit)
        source = f"output {uri}"
        if job.data_key is not None:
            try:
                key = shard_key(self.job_key(job), job.job_id, result.shard_index)
                context = part_context(job.job_id, "output", result.shard_index)
                data = open_sealed(key, data, context, source)
            except SealError as exc:
                raise OutputError(exc.reason) from exc
        return parse_npy(data, source, OutputError)
