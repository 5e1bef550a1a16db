"""What sealed job data costs a car and a job, against the same bytes unsealed, in the same run.

`idlefleet bench jobdata [--shard-mb M --shards S --rounds R --job-shards N --cars C]` starts
the embedded S3 store (moto's server in a child process on loopback) and measures:

- fetch: S shards of M = 10 MB each, sealed (`streams.sealing`) and put in the store, then
  fetched R times through presigned URLs exactly as a car's work process does it,
  `executor.jobdata.ItemData.input`: downloaded (bounded, resumable), its sha256 checked and
  opened (AES-256-GCM) as it arrives, and parsed as `.npy`, in memory; the baseline is a
  bare urllib3 GET of the same presigned URL, interleaved shard by shard. Median per shard
  [ms]; target `fetch_ratio <= 1.3`.
- job: one N = 1,000-shard job of the demo MLP on real Caltech session features, run by C
  car agents (`VehicleAgent`, work in their sandboxes) from its submission to the joined
  results in the submitter's hands: through the store (the client seals and uploads, the
  service presigns URLs and wraps each shard's key to its car, cars fetch, open, run, seal and
  put, the service reads every output back and opens it, the client fetches and opens them)
  against the same job from local files (the cars read the shards and write the outputs in a
  shared directory; the service reads them back). Wall time [s]; no broker or planner in
  either: what the data path costs.

The last line reads `fetch_ratio=… job_ratio=… shard_mb=… job_shards=…`.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import urllib3

from bench.executor import NullCharger
from executor.agent import AgentLimits, AgentPool, VehicleAgent
from executor.demo_model import build_demo_model
from executor.jobdata import ItemData, ItemKeys, ModelCacheConfig
from executor.objects import ObjectStore
from executor.roots import StorageRoots
from executor.runtime import OnnxRunner
from executor.storage import npy_bytes
from idlefleet.client.jobdata import ServiceKey, ShardOutputRef, download_outputs, upload_job
from idlefleet.service.jobdata import JobData
from idlefleet.sim.catalog import mlp_inputs
from idlefleet.sim.clock import SteppedClock
from idlefleet.store.embedded import EmbeddedStore
from streams.identity import Identity
from streams.messages import Assignment, Job, ModelRef, Result, WorkItem, WrappedKey
from streams.registry import Registry
from streams.sealing import new_job_key, part_context, seal, shard_key

T0 = datetime(2025, 6, 1, 12, tzinfo=UTC)
SLOT = timedelta(minutes=15)
MIB = 1024 * 1024


def measure_fetch(
    store: ObjectStore, prefix: str, shard_mb: float, shards: int, rounds: int
) -> tuple[float, float]:
    """(median fetch+verify+open [ms], median bare GET [ms]) per shard."""
    key = new_job_key()
    rng = np.random.default_rng(1)
    urls = []
    for index in range(shards):
        rows = rng.standard_normal(int(shard_mb * MIB / 4)).astype(np.float32)
        sealed = seal(
            shard_key(key, "bench", index),
            npy_bytes(rows, "bench", index),
            part_context("bench", "input", index),
        )
        uri = f"{prefix}/fetch/shard-{index}.sealed"
        store.put(uri, sealed)
        urls.append(
            (store.presign_get(uri, timedelta(hours=1)), hashlib.sha256(sealed).hexdigest(), index)
        )
    http = urllib3.PoolManager()
    max_bytes = int((shard_mb + 1) * MIB)
    agent_ms: list[float] = []
    bare_ms: list[float] = []
    for _ in range(rounds):
        for url, sha256, index in urls:
            started = time.perf_counter()
            response = http.request("GET", url)
            assert response.status == 200 and len(response.data) > 0
            bare_ms.append((time.perf_counter() - started) * 1000)
            item = WorkItem(
                work_id=f"bench-{index}",
                job_id="bench",
                shard_index=index,
                model=ModelRef(uri="s3://bench/model.onnx", sha256="0" * 64, sealed=True),
                input_uri=f"{prefix}/fetch/shard-{index}.sealed",
                output_uri=f"{prefix}/fetch/out",
                input_sha256=sha256,
                input_url=url,
            )
            keys = ItemKeys(shard=shard_key(key, "bench", index))
            started = time.perf_counter()
            array = ItemData.input(item, keys, max_bytes, ())
            agent_ms.append((time.perf_counter() - started) * 1000)
            assert array.shape == (int(shard_mb * MIB / 4),)
    return statistics.median(agent_ms), statistics.median(bare_ms)


def _fleet(cars: int, place: Path) -> tuple[AgentPool, list[Identity]]:
    identities = [Identity.generate(f"car-{i}", "car") for i in range(cars)]
    runner = OnnxRunner(["CPUExecutionProvider"])
    clock = SteppedClock(T0 + timedelta(minutes=1))
    agents = AgentPool(
        VehicleAgent(
            identity.principal,
            runner,
            NullCharger(),
            0.3,
            clock,
            limits=AgentLimits(
                roots=StorageRoots((place,), (place,), (place,)),
                model_cache=ModelCacheConfig(place / identity.principal / "models"),
            ),
            identities=(identity,),
        )
        for identity in identities
    )
    return agents, identities


def _run(agents: AgentPool, job: Job, job_data: JobData | None) -> list[Result]:
    """Every shard of `job`, spread over the cars in assignments of 100 items."""
    cars = [agent.vehicle_id for agent in agents]
    results = []
    for first in range(0, job.shards, 100 * len(cars)):
        for offset, car in enumerate(cars):
            start = first + offset * 100
            indices = range(start, min(start + 100, job.shards))
            if not indices:
                continue
            assignment = Assignment(
                assignment_id=f"a-{car}-{start}",
                plan_id="plan-1",
                vehicle_id=car,
                slot_start=T0,
                slot_end=T0 + SLOT,
                charge_power_kw=0.0,
                work=[
                    WorkItem(
                        work_id=f"{job.job_id}-{i}-{car}",
                        job_id=job.job_id,
                        shard_index=i,
                        model=job.model,
                        input_uri=job.input_uris[i],
                        output_uri=job.output_uri,
                        input_sha256=None if job.input_sha256s is None else job.input_sha256s[i],
                    )
                    for i in indices
                ],
            )
            if job_data is not None:
                assignment = job_data.prepare(assignment, {job.job_id: job}, SLOT)
            results += agents.handle(assignment)
    return results


def measure_job(store: ObjectStore, prefix: str, shards: int, cars: int) -> tuple[float, float]:
    """(through the store [s], from local files [s]) for one job from submission to results."""
    with tempfile.TemporaryDirectory() as scratch:
        place = Path(scratch)
        _, features = mlp_inputs(place)
        parts = np.array_split(np.resize(features, (max(shards * 4, len(features)), 4)), shards)
        model = build_demo_model()
        service = Identity.generate("planner", "service")
        agents, identities = _fleet(cars, place)
        registry = Registry(bytes(32))
        for identity in identities:
            registry.apply(identity.enrollment(T0))
        job_data = JobData(store, (service,), registry)

        started = time.perf_counter()
        uploaded = upload_job(
            store,
            prefix,
            "job-store",
            model,
            parts,
            service_key=ServiceKey(service.key_id, service.agreement_public_key),
        )
        job = _job(
            "job-store",
            uploaded.model,
            uploaded.input_uris,
            uploaded.output_uri,
            uploaded.input_sha256s,
            uploaded.data_key,
        )
        results = _run(agents, job, job_data)
        outputs = [job_data.output_of(r, job) for r in results]
        assert all(isinstance(o, np.ndarray) for o in outputs), outputs[:1]
        refs = [
            ShardOutputRef(r.shard_index, r.vehicle_id, r.output_uri or "", r.output_sha256 or "")
            for r in results
        ]
        download_outputs(store, "job-store", shards, refs, uploaded.job_key)
        through_store_s = time.perf_counter() - started

        started = time.perf_counter()
        (place / "model.onnx").write_bytes(model)
        uris = []
        for index, rows in enumerate(parts):
            path = place / "in" / f"shard-{index:06d}.npy"
            path.parent.mkdir(exist_ok=True)
            np.save(path, rows, allow_pickle=False)
            uris.append(path.as_uri())
        (place / "out").mkdir()
        ref = ModelRef(
            uri=(place / "model.onnx").as_uri(), sha256=hashlib.sha256(model).hexdigest()
        )
        local = _job("job-local", ref, uris, (place / "out").as_uri(), None)
        results = _run(agents, local, None)
        plain = JobData(None)
        outputs = [plain.output_of(r, local) for r in sorted(results, key=lambda r: r.shard_index)]
        assert all(isinstance(o, np.ndarray) for o in outputs), outputs[:1]
        np.concatenate([o for o in outputs if isinstance(o, np.ndarray)])
        local_s = time.perf_counter() - started
        return through_store_s, local_s


def _job(
    job_id: str,
    model: ModelRef,
    uris: list[str],
    output_uri: str,
    sha256s: list[str] | None,
    data_key: WrappedKey | None = None,
) -> Job:
    return Job(
        job_id=job_id,
        data_key=data_key,
        submitted_at=T0,
        model=model,
        input_uris=uris,
        input_sha256s=sha256s,
        output_uri=output_uri,
        value_per_shard=1.0,
        release=T0,
        deadline=T0 + timedelta(hours=4),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="idlefleet bench jobdata",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--shard-mb", type=float, default=10.0)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--job-shards", type=int, default=1000)
    parser.add_argument("--cars", type=int, default=4)
    args = parser.parse_args(argv)
    with EmbeddedStore() as embedded:
        store = ObjectStore(embedded.settings().store_config())
        prefix = f"{embedded.url}/bench-{int(time.time())}"
        agent_ms, bare_ms = measure_fetch(store, prefix, args.shard_mb, args.shards, args.rounds)
        print(
            f"fetch {args.shard_mb:g} MB shards: ItemData.input (fetch+verify+open+parse) "
            f"{agent_ms:.1f} ms, "
            f"bare GET {bare_ms:.1f} ms (median of {args.shards * args.rounds})"
        )
        store_s, local_s = measure_job(store, prefix, args.job_shards, args.cars)
        print(
            f"job of {args.job_shards} shards on {args.cars} cars: through the store "
            f"{store_s:.1f} s, from local files {local_s:.1f} s"
        )
    print(
        f"fetch_ratio={agent_ms / bare_ms:.3f} job_ratio={store_s / local_s:.3f} "
        f"shard_mb={args.shard_mb:g} job_shards={args.job_shards}"
    )
    return 0
