"""Fleet-scale planning against a monolithic Pyomo model of the same scenario.

`idlefleet bench optimizer [--cars N ...] [--jobs J ...]` generates one realistic day per size
(`idlefleet scenario generate`: Caltech sessions, 2020 intensity, pvlib PV, 100 cars per
depot), plans it with `plan_scenario(..., "milp")` (the decomposition above its size
threshold) and, as the in-run baseline, builds and solves the exact Pyomo model
(`optimizer.formulation`, a variable per job, vehicle and slot) of the same scenario in a
child process under a wall-time and memory limit. It also plans `greedy` and `immediate` and
compares emissions. Per size it prints build s, solve s, objective, bound and gap of both.

The last line, for the last size: `cars=… jobs=… wall_s=… gap=… speedup_vs_monolithic=…
emissions_vs_immediate=…`. `wall_s` is `plan_scenario`'s whole call (checker included);
a speedup written `>X` means the monolithic model had not finished when it hit its time or
memory limit, and X is computed with the time it had run.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from idlefleet.sim.catalog import demo_sites
from idlefleet.sim.scenarios import generate_scenario
from optimizer import Plan, Scenario, load_scenario, plan_scenario, scenario_to_dict
from optimizer.decompose import DecompositionStats

CARS_PER_SITE = 100
GIB = 1024**3


@dataclass(frozen=True)
class Monolithic:
    """The exact Pyomo model's run: times [s], objective and bound [currency]."""

    finished: bool
    note: str
    wall_s: float
    build_s: float | None = None
    solve_s: float | None = None
    objective: float | None = None
    bound: float | None = None


class StatsCatcher(logging.Handler):
    """Keeps the decomposition's final statistics record."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stats: DecompositionStats | None = None

    def emit(self, record: logging.LogRecord) -> None:
        stats = getattr(record, "stats", None)
        if isinstance(stats, DecompositionStats):
            self.stats = stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench optimizer", description=__doc__)
    parser.add_argument("--cars", type=int, nargs="+", default=[500, 2000, 10000])
    parser.add_argument("--jobs", type=int, nargs="+", help="per size (default: 2 x cars)")
    parser.add_argument("--region", default="DE")
    parser.add_argument("--date", default="2020-06-10", help="UTC day in 2020")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=600.0, help="our planner [s]")
    parser.add_argument("--mip-gap", type=float, default=0.005, help="our target gap")
    parser.add_argument("--monolithic-limit", type=float, default=120.0, help="wall [s]")
    parser.add_argument("--monolithic-memory-gb", type=float, default=6.0)
    parser.add_argument("--monolithic", help=argparse.SUPPRESS)  # child: SCENARIO.json
    args = parser.parse_args(argv)
    if args.monolithic:
        limit = int(args.monolithic_memory_gb * GIB)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        return _monolithic_child(Path(args.monolithic), args.monolithic_limit)
    jobs = args.jobs or [2 * cars for cars in args.cars]
    if len(jobs) != len(args.cars):
        parser.error("give one --jobs value per --cars value")
    catcher = StatsCatcher()
    decompose_log = logging.getLogger("optimizer.decompose")
    decompose_log.addHandler(catcher)
    decompose_log.setLevel(logging.INFO)
    decompose_log.propagate = False
    last = ""
    for cars, job_count in zip(args.cars, jobs, strict=True):
        last = _size(args, cars, job_count, catcher)
    print(last)
    return 0


def _size(args: argparse.Namespace, cars: int, job_count: int, catcher: StatsCatcher) -> str:
    sites = demo_sites(max(1, round(cars / CARS_PER_SITE)), cars, args.region)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.json"
        generated = generate_scenario(
            cars, sites, job_count, date.fromisoformat(args.date), args.seed
        )
        path.write_text(json.dumps(scenario_to_dict(generated)))
        del generated  # the child reads the file; at 10^5 cars the document is large
        started = time.perf_counter()
        scenario = load_scenario(path)
        load_s = time.perf_counter() - started
        print(f"size: cars={cars} jobs={job_count} sites={len(sites)} (load {load_s:.1f} s)")
        catcher.stats = None
        started = time.perf_counter()
        ours = plan_scenario(
            scenario, "milp", time_limit_s=args.time_limit, mip_gap_frac=args.mip_gap
        )
        wall_s = time.perf_counter() - started
        stats = catcher.stats
        build = "-" if stats is None else f"{stats.build_s:.1f}"
        solve = ours.solve_s if stats is None else stats.solve_s
        how = "exact" if stats is None else f"decomposition, {stats.rounds} rounds"
        print(
            f"  milp ({how}): build {build} s, solve {solve:.1f} s, wall {wall_s:.1f} s, "
            f"{_figures(ours)}",
            flush=True,
        )
        mono = _monolithic(path, args.monolithic_limit, args.monolithic_memory_gb)
    if mono.finished:
        gap = _gap(mono.objective, mono.bound)
        print(
            f"  monolithic Pyomo: build {mono.build_s:.1f} s, solve {mono.solve_s:.1f} s, "
            f"objective {mono.objective:.4f}, bound {_num(mono.bound)}, gap {gap}"
        )
    else:
        print(f"  monolithic Pyomo: {mono.note} after {mono.wall_s:.1f} s")
    emissions = {"milp": _emissions(ours)}
    for strategy in ("greedy", "immediate"):
        started = time.perf_counter()
        plan = plan_scenario(scenario, strategy)
        print(f"  {strategy}: wall {time.perf_counter() - started:.1f} s, {_figures(plan)}")
        emissions[strategy] = _emissions(plan)
    vs_greedy = emissions["milp"] / emissions["greedy"]
    vs_immediate = emissions["milp"] / emissions["immediate"]
    print(
        f"  emissions: milp {emissions['milp']:.1f} kg, {vs_greedy:.3f} of greedy, "
        f"{vs_immediate:.3f} of immediate",
        flush=True,
    )
    speedup = mono.wall_s / wall_s
    return (
        f"cars={cars} jobs={job_count} wall_s={wall_s:.1f} gap={ours.gap_frac:.5f} "
        f"speedup_vs_monolithic={'' if mono.finished else '>'}{speedup:.1f} "
        f"emissions_vs_immediate={vs_immediate:.3f}"
    )


def _figures(plan: Plan) -> str:
    return (
        f"objective {plan.objective:.4f}, bound {_num(plan.best_bound)}, "
        f"gap {_gap(plan.objective, plan.best_bound)}, status {plan.status.value}"
    )


def _emissions(plan: Plan) -> float:
    if plan.kpis is None:
        raise RuntimeError(f"{plan.strategy} has no schedule: {plan.reason}")
    return plan.kpis.emissions_kg


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _gap(objective: float | None, bound: float | None) -> str:
    if objective is None or bound is None:
        return "-"
    return f"{max(0.0, objective - bound) / max(abs(objective), 1e-9):.5f}"


def _monolithic(path: Path, limit_s: float, memory_gb: float) -> Monolithic:
    """Run the exact Pyomo model in a child process (its address space capped at
    ``memory_gb``), killed at ``limit_s`` [s] wall."""
    command = [sys.executable, "-m", "bench.optimizer", "--monolithic", str(path)]
    command += ["--monolithic-limit", str(limit_s), "--monolithic-memory-gb", str(memory_gb)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit_s)
    except subprocess.TimeoutExpired as stopped:
        partial = stopped.stdout.decode() if isinstance(stopped.stdout, bytes) else stopped.stdout
        built = [json.loads(line) for line in (partial or "").splitlines() if line.strip()]
        where = "building" if not built else f"solving (built in {built[0]['build_s']:.1f} s)"
        return Monolithic(False, f"did not finish {where} within the limit", limit_s)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        memory = any(sign in done.stderr for sign in ("MemoryError", "bad_alloc"))
        note = f"ran out of {memory_gb:g} GiB" if memory else f"failed: {done.stderr[-300:]}"
        return Monolithic(False, note, wall_s)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["objective"] is None:
        return Monolithic(False, f"no schedule ({result['status']})", wall_s)
    return Monolithic(
        True,
        result["status"],
        wall_s,
        result["build_s"],
        result["solve_s"],
        result["objective"],
        result["bound"],
    )


def _monolithic_child(path: Path, limit_s: float) -> int:
    """Build and solve the exact Pyomo model; print one JSON line."""
    from optimizer.formulation import build_model
    from optimizer.milp_run import solve_model

    scenario: Scenario = load_scenario(path)
    started = time.perf_counter()
    model, _ = build_model(scenario)
    build_s = time.perf_counter() - started
    print(json.dumps({"build_s": build_s}), flush=True)
    result = solve_model(model, time_limit_s=max(limit_s - build_s, 1.0))
    print(
        json.dumps(
            {
                "status": result.status.value,
                "build_s": build_s,
                "solve_s": result.solve_s,
                "objective": result.objective,
                "bound": result.best_bound,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
