"""Job data end to end on a real S3 endpoint (the embedded moto store), without a broker: the
submitter seals and uploads, the service gives a car URLs and keys, the car's agent runs the
work in its sandbox, the service reads the output back, the submitter opens the results.

Every bad object ends in a failed result with its reason, never a crash."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from executor.agent import AgentLimits, VehicleAgent
from executor.demo_model import build_demo_model
from executor.errors import InputError
from executor.jobdata import ModelCacheConfig
from executor.objects import ObjectStore
from executor.roots import StorageRoots
from executor.runtime import OnnxRunner
from executor.storage import parse_npy
from idlefleet.client.jobdata import (
    JobDataError,
    ServiceKey,
    ShardOutputRef,
    UploadedJob,
    download_outputs,
    upload_job,
)
from idlefleet.service.jobdata import JobData
from idlefleet.sim.clock import SteppedClock
from idlefleet.store.embedded import EmbeddedStore
from streams.identity import Identity
from streams.messages import Assignment, Job, Result, WorkItem
from streams.registry import Registry
from tests.executor.conftest import RecordingCharger

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SLOT = timedelta(minutes=15)
ROWS = np.random.default_rng(3).standard_normal((10, 4)).astype(np.float32)


@pytest.fixture
def store(embedded_store: EmbeddedStore) -> ObjectStore:
    return ObjectStore(embedded_store.settings().store_config())


class Fleet:
    """A service key, one car enrolled, the service's job data and the car's agent."""

    def __init__(self, store: ObjectStore, tmp_path: Path, runner: OnnxRunner) -> None:
        self.service = Identity.generate("planner", "service")
        self.car = Identity.generate("car-1", "car")
        registry = Registry(bytes(32))
        registry.apply(self.car.enrollment(T0 - timedelta(days=1)))
        self.job_data = JobData(store, (self.service,), registry)
        place = tmp_path / "car-1"
        place.mkdir()
        self.agent = VehicleAgent(
            "car-1",
            runner,
            RecordingCharger(),
            0.3,
            SteppedClock(T0 + timedelta(minutes=1)),
            limits=AgentLimits(
                roots=StorageRoots((place,), (place,), (place,)),
                model_cache=ModelCacheConfig(place / "models"),
            ),
            identities=(self.car,),
        )

    @property
    def service_key(self) -> ServiceKey:
        return ServiceKey(self.service.key_id, self.service.agreement_public_key)

    def job(self, uploaded: UploadedJob, job_id: str = "job-1") -> Job:
        return Job(
            job_id=job_id,
            submitted_at=T0,
            model=uploaded.model,
            input_uris=uploaded.input_uris,
            input_sha256s=uploaded.input_sha256s,
            output_uri=uploaded.output_uri,
            data_key=uploaded.data_key,
            value_per_shard=1.0,
            release=T0,
            deadline=T0 + timedelta(hours=4),
        )

    def run(self, job: Job, shards: range, mangle: Callable[[WorkItem], WorkItem] | None = None):
        """The car's results for `shards` of `job`, dispatched in one assignment."""
        items = [
            WorkItem(
                work_id=f"work-{index}",
                job_id=job.job_id,
                shard_index=index,
                model=job.model,
                input_uri=job.input_uris[index],
                output_uri=job.output_uri,
                input_sha256=None if job.input_sha256s is None else job.input_sha256s[index],
            )
            for index in shards
        ]
        assignment = Assignment(
            assignment_id="a-1",
            plan_id="plan-1",
            vehicle_id="car-1",
            slot_start=T0,
            slot_end=T0 + SLOT,
            charge_power_kw=3.0,
            work=items,
        )
        prepared = self.job_data.prepare(assignment, {job.job_id: job}, SLOT)
        if mangle is not None:
            prepared = prepared.model_copy(update={"work": [mangle(i) for i in prepared.work]})
        return self.agent.handle(prepared)


@pytest.fixture
def fleet(store: ObjectStore, tmp_path: Path) -> Fleet:
    return Fleet(store, tmp_path, OnnxRunner(["CPUExecutionProvider"]))


def expected_outputs(rows: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(build_demo_model(), providers=["CPUExecutionProvider"])
    [output] = session.run(None, {session.get_inputs()[0].name: rows})
    return output


def test_sealed_work_runs_on_the_car_and_its_outputs_open_for_the_submitter(
    fleet: Fleet, store: ObjectStore, store_prefix: str
) -> None:
    shards = [ROWS[:4], ROWS[4:8], ROWS[8:]]
    uploaded = upload_job(
        store, store_prefix, "job-1", build_demo_model(), shards, service_key=fleet.service_key
    )
    job = fleet.job(uploaded)
    results = fleet.run(job, range(3))
    assert [r.status for r in results] == ["done"] * 3, [r.reason for r in results]
    for result in results:  # the service reads each output back and opens it
        output = fleet.job_data.output_of(result, job)
        assert isinstance(output, np.ndarray), output
    refs = [
        ShardOutputRef(r.shard_index, r.vehicle_id, r.output_uri or "", r.output_sha256 or "")
        for r in results
    ]
    assert uploaded.job_key is not None
    joined = download_outputs(store, "job-1", 3, refs, uploaded.job_key)
    assert np.array_equal(joined, expected_outputs(ROWS))  # what bare onnxruntime gives


def test_the_store_holds_only_ciphertext(
    fleet: Fleet, store: ObjectStore, store_prefix: str
) -> None:
    shards = [ROWS[:5], ROWS[5:]]
    uploaded = upload_job(
        store, store_prefix, "job-1", build_demo_model(), shards, service_key=fleet.service_key
    )
    fleet.run(fleet.job(uploaded), range(2))
    objects = store.list(store_prefix)
    assert len(objects) == 1 + 2 + 2  # the model, two inputs, two outputs
    secrets = [shard.tobytes() for shard in shards] + [build_demo_model()[:64]]
    for uri in objects:
        data = store.get(uri, 10**7)
        assert not data.startswith(b"\x93NUMPY"), uri
        with pytest.raises(ValueError):  # numpy's own reader refuses it too
            np.load(io.BytesIO(data), allow_pickle=False)
        with pytest.raises(InputError):
            parse_npy(data, uri)
        for secret in secrets:
            assert secret not in data, uri
        assert ROWS[0].tobytes()[:8] not in data


def test_a_car_cannot_open_another_shard_with_its_key(
    fleet: Fleet, store: ObjectStore, store_prefix: str
) -> None:
    uploaded = upload_job(
        store,
        store_prefix,
        "job-1",
        build_demo_model(),
        [ROWS[:5], ROWS[5:]],
        service_key=fleet.service_key,
    )
    job = fleet.job(uploaded)
    # shard 1's input presented under shard 0's URL and hash: it fails its tag check
    moved = job.model_copy(
        update={
            "input_uris": [job.input_uris[1], job.input_uris[1]],
            "input_sha256s": [job.input_sha256s[1], job.input_sha256s[1]],
        }
    )
    [result] = fleet.run(moved, range(1))
    assert result.status == "failed"
    assert "integrity check" in (result.reason or "")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("tamper", "sha256 mismatch"),
        ("delete", "not found"),
    ],
)
def test_a_damaged_or_missing_input_fails_its_item_with_the_reason(
    fleet: Fleet, store: ObjectStore, store_prefix: str, damage: str, reason: str
) -> None:
    uploaded = upload_job(
        store,
        store_prefix,
        "job-1",
        build_demo_model(),
        [ROWS[:5], ROWS[5:]],
        service_key=fleet.service_key,
    )
    victim = uploaded.input_uris[0]
    if damage == "tamper":
        data = bytearray(store.get(victim, 10**6))
        data[-1] ^= 1
        store.put(victim, bytes(data))
    else:
        store.delete(victim)
    first, second = fleet.run(fleet.job(uploaded), range(2))
    assert first.status == "failed" and reason in (first.reason or ""), first.reason
    assert "X-Amz" not in (first.reason or "")  # a presigned URL's signature never shows
    assert second.status == "done"  # the next item still runs


def test_a_store_that_is_down_fails_the_item_after_retries(
    fleet: Fleet, store: ObjectStore, store_prefix: str
) -> None:
    uploaded = upload_job(
        store, store_prefix, "job-1", build_demo_model(), [ROWS], service_key=fleet.service_key
    )

    def unreachable(item: WorkItem) -> WorkItem:
        return item.model_copy(update={"input_url": "http://127.0.0.1:9/idlefleet/gone"})

    [result] = fleet.run(fleet.job(uploaded), range(1), unreachable)
    assert result.status == "failed"
    assert "unreachable" in (result.reason or "") or "refused" in (result.reason or "")


def test_an_output_pointing_at_another_object_is_refused(
    fleet: Fleet, store: ObjectStore, store_prefix: str
) -> None:
    uploaded = upload_job(
        store,
        store_prefix,
        "job-1",
        build_demo_model(),
        [ROWS[:5], ROWS[5:]],
        service_key=fleet.service_key,
    )
    job = fleet.job(uploaded)
    first, second = fleet.run(job, range(2))
    copied: Result = second.model_copy(
        update={"output_uri": first.output_uri, "output_sha256": first.output_sha256}
    )
    refused = fleet.job_data.output_of(copied, job)
    assert not isinstance(refused, np.ndarray)
    assert "not the object" in str(refused)


def test_results_name_the_shards_still_missing(store: ObjectStore) -> None:
    with pytest.raises(JobDataError, match="2 of 3 shards have no accepted output"):
        download_outputs(
            store, "job-1", 3, [ShardOutputRef(1, "car-1", "s3://idlefleet/x", "0" * 64)], None
        )


def test_a_plain_job_runs_too(fleet: Fleet, store: ObjectStore, store_prefix: str) -> None:
    uploaded = upload_job(
        store, store_prefix, "job-1", build_demo_model(), [ROWS], service_key=None
    )
    assert uploaded.data_key is None and not uploaded.model.sealed
    [result] = fleet.run(fleet.job(uploaded), range(1))
    assert result.status == "done", result.reason
    output = fleet.job_data.output_of(result, fleet.job(uploaded))
    assert np.array_equal(output, expected_outputs(ROWS))
