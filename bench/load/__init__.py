"""Ingestion and the gRPC API under a steady load: 10,000 cars reporting and 100 requests/s.

`idlefleet bench load [--cars N] [--telemetry-interval S] [--rps R] [--minutes M] [--sites K]
[--idle-seconds I] [--time-scale X] [--calls-csv PATH]` starts the embedded broker, the
planner service (`idlefleet.service.planner.PlannerService`) reading the streams, and the production
gRPC server over it (`serving_api`: token auth, broker and solver health probes), for K depots
in DE, GB and FR sized for N cars, with the day-ahead intensity and clear-sky PV forecasts
published and one job of a shard per car. Two more processes load it:

- telemetry: N cars drawn from the real Caltech sessions (`idlefleet.sim.fleet`), 90 % parked
  when it starts, the others arriving at their session's time; cars leave when their session
  ends. Every car reports every S seconds, spread evenly over the interval. Batteries follow
  the charge power of the assignments the service publishes (the process reads them, as a
  fleet's gateway would), so the energies move as planned.
- API: R requests per second, open loop (not waiting for answers): GetFleetStatus, GetPlan
  (a site, a car), GetFlexibility (a site, a region) and ListJobs in turn, and a SubmitJob
  every 30 s; each call's latency and status code are recorded.

The service's time runs X times faster than the wall clock (default 15: one 15-minute slot
per minute, so it re-plans and dispatches every minute, through its normal MILP path);
telemetry and requests are paced by the wall clock (X = 1: real time, so a run shorter than
a slot plans only once, before the load). First I seconds of requests with no
telemetry and no planning: the in-run baseline. Then M minutes of both. Every 5 s: the lag of
the service's telemetry reader (end offsets minus the group's committed offsets, which it
commits after processing [records]), the process's RSS, and the records processed.

A line per minute, then a summary; the last line reads `cars=… rps=… minutes=…
lag_max_msgs=… lag_end_msgs=… rss_growth_frac=… api_p99_ms=… p99_ratio_vs_idle=…
ingest_ratio_vs_offered=…`. Exit 1 unless the lag at the end is within 5 s of traffic, RSS
grows less than 10 % from minute 1 to the end, and no call failed other than GetPlan of a car
the plan does not hold (NOT_FOUND: away or just arrived). `--calls-csv` writes every call.
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from bench.load.fleet import benchmark_sites, build_fleet, publish_inputs
from bench.load.runner import run
from bench.load.verdict import summarise
from streams.broker import EmbeddedBroker
from streams.clients import KafkaSettings, ensure_topics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench load", description=__doc__)
    parser.add_argument("--cars", type=int, default=10_000)
    parser.add_argument("--telemetry-interval", type=float, default=30.0, help="per car [s]")
    parser.add_argument("--rps", type=float, default=100.0, help="API requests per second")
    parser.add_argument("--minutes", type=int, default=10, help="of load, after the baseline")
    parser.add_argument("--sites", type=int, default=102)
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="API alone [s]")
    parser.add_argument("--time-scale", type=float, default=15.0, help="service time per wall time")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--calls-csv", type=Path, help="write every call (s from the start of the load) here"
    )
    args = parser.parse_args(argv)

    sites = benchmark_sites(args.sites, args.cars)
    fleet = build_fleet(args.cars, sites, args.seed)
    run_h = args.time_scale * (args.minutes + 10) / 60
    with EmbeddedBroker() as broker:
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"load{uuid.uuid4().hex[:8]}"
        )
        ensure_topics(kafka)
        publish_inputs(kafka, sites, args.cars, run_h)
        print(
            f"{args.cars} cars at {len(sites)} sites, {args.cars / args.telemetry_interval:.0f} "
            f"reports/s, {args.rps:.0f} requests/s; service time x{args.time_scale:g}",
            flush=True,
        )
        outcome = run(args, kafka, sites, fleet)
    if args.calls_csv is not None:
        outcome.calls.write_csv(args.calls_csv, outcome.schedule.load_wall_s)
    return summarise(outcome)
