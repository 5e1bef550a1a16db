"""GetFlexibility and GetPlan latency at a steady load, for a 10,000-car fleet.

`idlefleet bench grpc [--cars N] [--sites K] [--rate R] [--seconds S]` builds a fleet of N
cars drawn from the real Caltech sessions, all parked this evening at K depots in DE, GB
and FR with their real June 2020 carbon intensity, plans it (the `immediate` strategy: a
MILP of 10,000 cars is not what this measures) and serves it with the production server:
bearer-token auth, health probes of an embedded broker and the solver every 5 s, per-plan
views. A second process sends requests open-loop at R per second (not waiting for answers),
first grpc.health.v1 Check, the in-run baseline on the same server and channel, then an
even mix of GetFlexibility (a site, a region, the fleet) and GetPlan (a site, the fleet, a
car) for the whole 24-hour horizon, alternating twice, S seconds of each in all.

The last line reads `rps=… p99_ms=… ratio_vs_health=…`: achieved API requests per second,
their 99th percentile latency [ms], and that over the health check's.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import secrets
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench._openloop import Call, Request, Scopes, bearer, cycling, plan_requests, send_open_loop
from forecasting.carbon import intensity_on_grid
from forecasting.timegrid import SlotGrid
from idlefleet.api.auth import Role, TokenTable
from idlefleet.api.health import broker_probe, solver_answers
from idlefleet.api.server import create_server
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.settings import PlannerSettings
from idlefleet.sim.fleet import CHARGER_KW, generate_fleet
from idlefleet.sites import SiteConfig
from streams.broker import EmbeddedBroker
from streams.messages import GridSignal, Job, ModelRef

NOW = datetime(2020, 6, 10, 18, 0, tzinfo=UTC)
CITY_CENTRES = (
    ("DE", "Europe/Berlin", 52.52, 13.40),
    ("GB", "Europe/London", 51.51, -0.13),
    ("FR", "Europe/Paris", 48.86, 2.35),
)
SETTINGS = PlannerSettings(slot_minutes=15, horizon_hours=24)
WARM_UP_S = 1.0


def depots(count: int, cars: int) -> list[SiteConfig]:
    """`count` depots spread over the regions, each sized so half its cars charge at once."""
    per_site = -(-cars // count)
    return [
        SiteConfig(
            site_id=f"depot-{region.lower()}-{number:03d}",
            region=region,
            timezone=zone,
            latitude_deg=lat,
            longitude_deg=lon,
            grid_limit_kw=CHARGER_KW * per_site / 2,
        )
        for number in range(count)
        for region, zone, lat, lon in [CITY_CENTRES[number % len(CITY_CENTRES)]]
    ]


def fleet_backend(cars: int, sites: int, seed: int) -> LocalBackend:
    """The fleet parked now, the day's intensity per region and one job of a shard per car."""
    configs = depots(sites, cars)
    backend = LocalBackend(configs, SETTINGS, lambda: NOW)
    grid = SlotGrid(NOW, SETTINGS.slot_minutes, 96)
    with backend.lock:
        for simulated in generate_fleet(cars, configs, NOW, 24, 15, np.random.default_rng(seed)):
            stay = simulated.departure - simulated.arrival
            parked = dataclasses.replace(simulated, arrival=NOW, departure=NOW + stay)
            telemetry = parked.telemetry(NOW)
            assert telemetry is not None
            backend.state.apply_telemetry(telemetry)
        for region, *_ in CITY_CENTRES:
            backend.state.apply_grid(
                GridSignal(
                    region=region,
                    issued_at=NOW,
                    start=NOW,
                    slot_minutes=SETTINGS.slot_minutes,
                    kind="actual",
                    source="ENTSO-E 2020 via Wiesner et al. (Let's Wait Awhile)",
                    intensity_g_per_kwh=intensity_on_grid(region, grid).tolist(),
                )
            )
    backend.submit_job(
        Job(
            job_id="nightly-embeddings",
            submitted_at=NOW,
            model=ModelRef(uri="file:///srv/models/m.onnx", sha256="0" * 64),
            input_uris=[f"file:///srv/in/{i}.npy" for i in range(cars)],
            output_uri="file:///srv/out/nightly",
            value_per_shard=0.5,
            release=NOW,
            deadline=NOW + timedelta(hours=12),
        )
    )
    return backend


def _steady(requests: list[Request], rate: float, seconds: float) -> list[float]:
    """Send at `rate` per second for `seconds`, cycling through `requests`; latencies [s]."""
    calls: list[Call] = []
    send_open_loop(cycling(requests), rate, seconds, calls.append)
    failures = [call for call in calls if call.code != "OK"]
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, first: {failures[0]}")
    return [call.latency_s for call in calls]


def load(
    target: str, token: str, scopes: Scopes, rate: float, seconds: float, out: Connection
) -> None:
    """The second process: health and API requests at `rate`, alternating twice."""
    metadata = bearer(token)
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.FleetPlannerStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        api = plan_requests(stub, scopes, metadata, np.random.default_rng(1))
        check = health_pb2.HealthCheckRequest(service="idlefleet.v1.FleetPlanner")
        baseline = [Request("Check", lambda: health.Check.future(check))]
        _steady(api + baseline, rate, WARM_UP_S)
        results: dict[str, list[float]] = {"health": [], "api": [], "api_s": []}
        for _ in range(2):
            results["health"] += _steady(baseline, rate, seconds / 4)
            started = time.perf_counter()
            results["api"] += _steady(api, rate, seconds / 4)
            results["api_s"].append(time.perf_counter() - started)
    out.send(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench grpc", description=__doc__)
    parser.add_argument("--cars", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=102)
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured, both kinds")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    backend = fleet_backend(args.cars, args.sites, args.seed)
    built = time.perf_counter()
    views = backend.replan("immediate")
    planned = time.perf_counter()
    views = backend.board.publish(views.snapshot)  # once more, to time the views alone
    viewed = time.perf_counter()
    token = secrets.token_urlsafe(24)
    with EmbeddedBroker() as broker:
        probes = {"broker": broker_probe(broker.bootstrap_servers), "solver": solver_answers}
        tokens = TokenTable([(token, Role.VIEWER)])
        server, port = create_server(backend, 0, tokens, host="127.0.0.1", probes=probes)
        with server:
            print(
                f"fleet: {len(views.snapshot.scenario.vehicles)} parked cars at {args.sites} "
                f"sites, built in {built - started:.1f} s; plan ({views.plan.strategy}, "
                f"{len(views.slot_start_s)} slots) in {planned - built:.1f} s, "
                f"its views in {viewed - planned:.2f} s"
            )
            scenario = views.snapshot.scenario
            scopes = Scopes(
                regions=[r.id for r in scenario.regions],
                sites=[s.id for s in scenario.sites],
                vehicles=[v.id for v in scenario.vehicles],
            )
            spawn = multiprocessing.get_context("spawn")
            receive, send = spawn.Pipe(duplex=False)
            client = spawn.Process(
                target=load,
                args=(f"127.0.0.1:{port}", token, scopes, args.rate, args.seconds, send),
            )
            client.start()
            results = receive.recv()
            client.join()
    api_ms = np.array(results["api"]) * 1000
    health_ms = np.array(results["health"]) * 1000
    for name, values in (("health Check", health_ms), ("GetFlexibility+GetPlan", api_ms)):
        p50, p99, worst = np.percentile(values, [50, 99, 100])
        print(f"{name}: n={len(values)} p50_ms={p50:.2f} p99_ms={p99:.2f} max_ms={worst:.2f}")
    rps = len(api_ms) / sum(results["api_s"])
    p99_api, p99_health = np.percentile(api_ms, 99), np.percentile(health_ms, 99)
    print(f"rps={rps:.0f} p99_ms={p99_api:.2f} ratio_vs_health={p99_api / p99_health:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
