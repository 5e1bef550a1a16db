"""The API process: the steady request mix and a SubmitJob every 30 s, sent open loop, the
finished calls sent back in batches."""

from __future__ import annotations

import queue
import threading
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

import grpc
import numpy as np

from bench._openloop import Call, Request, Scopes, bearer, plan_requests, send_open_loop
from bench.load.fleet import MODEL
from bench.load.schedule import Schedule
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.sim.clock import ScaledClock

SUBMIT_EVERY_S = 30.0
SUBMITTED_SHARDS = 20


def api_requests(
    stub: pb_grpc.FleetPlannerStub, scopes: Scopes, metadata: Any, rng: np.random.Generator
) -> list[Request]:
    """The steady mix: the fleet's status, the plan of a site and of a car, the flexibility of
    a site and of a region, the job list."""
    by_label = {request.label: request for request in plan_requests(stub, scopes, metadata, rng)}
    return [
        Request(
            "GetFleetStatus",
            lambda: stub.GetFleetStatus.future(pb.GetFleetStatusRequest(), metadata=metadata),
        ),
        by_label["GetPlan(site)"],
        by_label["GetFlexibility(site)"],
        by_label["GetPlan(vehicle)"],
        by_label["GetFlexibility(region)"],
        Request("ListJobs", lambda: stub.ListJobs.future(pb.ListJobsRequest(), metadata=metadata)),
    ]


def job_submitter(
    stub: pb_grpc.FleetPlannerStub,
    scopes: Scopes,
    metadata: Any,
    clock: ScaledClock,
    rng: np.random.Generator,
) -> Request:
    """SubmitJob of a new job each time: a few shards at one site, due in 4 hours."""
    numbers = iter(range(1, 1_000_000))

    def send() -> Any:
        job_id = f"load-{next(numbers):04d}"
        now = clock()
        spec = pb.JobSpec(
            job_id=job_id,
            model=pb.ModelRef(uri=MODEL.uri, sha256=MODEL.sha256),
            input_uris=[f"file:///srv/in/{job_id}/{i}.npy" for i in range(SUBMITTED_SHARDS)],
            output_uri=f"file:///srv/out/{job_id}",
            value_per_shard=0.5,
            site_ids=[scopes.sites[int(rng.integers(len(scopes.sites)))]],
        )
        spec.release.FromDatetime(now)
        spec.deadline.FromDatetime(now + timedelta(hours=4))
        return stub.SubmitJob.future(pb.SubmitJobRequest(job=spec), metadata=metadata)

    return Request("SubmitJob", send)


def drive_api(
    target: str, token: str, scopes: Scopes, rps: float, schedule: Schedule, conn: Connection
) -> None:
    """The API process: `rps` requests per second open-loop from the warm-up to the end;
    finished calls go to `conn` in batches about every second, then None."""
    metadata = bearer(token)
    finished: queue.SimpleQueue[Call] = queue.SimpleQueue()
    stop = threading.Event()
    forwarder = threading.Thread(target=_forward_calls, args=(finished, conn, stop), daemon=True)
    forwarder.start()
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.FleetPlannerStub(channel)
        rng = np.random.default_rng(1)
        mix = api_requests(stub, scopes, metadata, rng)
        submit = job_submitter(stub, scopes, metadata, schedule.clock, rng)
        submit_every = max(1, round(SUBMIT_EVERY_S * rps))

        def pick(index: int) -> Request:
            return submit if index % submit_every == submit_every - 1 else mix[index % len(mix)]

        seconds = schedule.end_wall_s - schedule.warm_wall_s
        send_open_loop(pick, rps, seconds, finished.put, start_wall_s=schedule.warm_wall_s)
    stop.set()
    forwarder.join()
    conn.send(None)


def _forward_calls(
    finished: queue.SimpleQueue[Call], conn: Connection, stop: threading.Event
) -> None:
    """Send what has finished about every second until `stop`, then the rest."""
    while True:
        stopping = stop.wait(1.0)
        batch = []
        while not finished.empty():
            batch.append(finished.get())
        if batch:
            conn.send(batch)
        if stopping:
            return
