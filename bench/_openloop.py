"""Open-loop gRPC load shared by the benchmarks: requests at a steady rate, never waiting for
answers, each call's latency and status recorded.

Not a benchmark itself (`idlefleet bench` skips modules whose name starts with `_`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import numpy as np

from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc


@dataclasses.dataclass(frozen=True)
class Scopes:
    """What requests may name: the fleet's regions, sites and vehicles."""

    regions: list[str]
    sites: list[str]
    vehicles: list[str]


@dataclasses.dataclass(frozen=True)
class Request:
    """A kind of request: its label (RPC and scope) and a sender returning the call's future."""

    label: str
    send: Callable[[], Any]


@dataclasses.dataclass(frozen=True)
class Call:
    """One finished call: what it was, when it was sent [s since the epoch], how long it
    took [s] and its status code's name (`OK` when it succeeded)."""

    label: str
    sent_wall_s: float
    latency_s: float
    code: str


def bearer(token: str) -> tuple[tuple[str, str]]:
    """The call metadata that presents `token` to the server's bearer-token auth."""
    return (("authorization", f"Bearer {token}"),)


def plan_requests(
    stub: pb_grpc.FleetPlannerStub, scopes: Scopes, metadata: Any, rng: np.random.Generator
) -> list[Request]:
    """GetFlexibility and GetPlan for a site, a region or a car and the fleet (random ids)."""

    def pick(items: list[str]) -> str:
        return items[int(rng.integers(len(items)))]

    flexibility, plan = stub.GetFlexibility.future, stub.GetPlan.future
    return [
        Request(
            "GetFlexibility(site)",
            lambda: flexibility(
                pb.GetFlexibilityRequest(site_id=pick(scopes.sites)), metadata=metadata
            ),
        ),
        Request(
            "GetPlan(site)",
            lambda: plan(pb.GetPlanRequest(site_id=pick(scopes.sites)), metadata=metadata),
        ),
        Request(
            "GetFlexibility(region)",
            lambda: flexibility(
                pb.GetFlexibilityRequest(region=pick(scopes.regions)), metadata=metadata
            ),
        ),
        Request(
            "GetPlan(vehicle)",
            lambda: plan(pb.GetPlanRequest(vehicle_id=pick(scopes.vehicles)), metadata=metadata),
        ),
        Request(
            "GetFlexibility(fleet)",
            lambda: flexibility(pb.GetFlexibilityRequest(), metadata=metadata),
        ),
        Request("GetPlan(fleet)", lambda: plan(pb.GetPlanRequest(), metadata=metadata)),
    ]


def cycling(requests: Sequence[Request]) -> Callable[[int], Request]:
    """The i-th request of an even mix: `requests` in turn."""
    return lambda index: requests[index % len(requests)]


def send_open_loop(
    pick: Callable[[int], Request],
    rate_per_s: float,
    seconds: float,
    record: Callable[[Call], None],
    start_wall_s: float | None = None,
) -> None:
    """Send `pick(i)` at `rate_per_s` for `seconds` (from `start_wall_s`, default now) without
    waiting for answers; `record` gets every call as it finishes, on gRPC's threads. Returns
    once every call has finished."""
    count = int(rate_per_s * seconds)
    done = threading.Semaphore(0)
    started_s = time.time() if start_wall_s is None else start_wall_s
    for index in range(count):
        delay_s = started_s + index / rate_per_s - time.time()
        if delay_s > 0:
            time.sleep(delay_s)
        request = pick(index)
        sent_s, sent_perf_s = time.time(), time.perf_counter()
        future = request.send()

        def finished(
            call: Any, label: str = request.label, sent_s: float = sent_s, sent: float = sent_perf_s
        ) -> None:
            latency_s = time.perf_counter() - sent
            code = call.code() if isinstance(call, grpc.Call) else grpc.StatusCode.OK
            record(Call(label, sent_s, latency_s, code.name))
            done.release()

        future.add_done_callback(finished)
    for _ in range(count):
        done.acquire()
