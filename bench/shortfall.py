"""Planning when the grid cannot serve every owner, against the same day when it can.

`idlefleet bench shortfall [--cars N] [--limit-frac F] [--seed S]` generates one realistic day
(`idlefleet scenario generate`: Caltech sessions, 2020 intensity, pvlib PV, 100 cars per
depot) and plans it twice with `plan_scenario(..., "milp")`: as generated (the in-run
baseline: loose limits, no shortfall) and with every depot's grid connection cut to
`--limit-frac` of it, so that the connections bind and owners are left short. The second
plan first finds the least shortfall (a linear programme over charging alone), then plans
with each short car's target lowered by its fair share.

The last line: `cars=… loose_s=… binding_s=… ratio=… shortfall_kwh=… least_kwh=…`; the
target is `ratio <= 1.5`. `--limit-frac 0.1` binds (site-slots at the limit) without leaving
anyone short; the default 0.05 also leaves cars short.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from datetime import date

from bench.optimizer import CARS_PER_SITE
from idlefleet.sim.catalog import demo_sites
from idlefleet.sim.scenarios import generate_scenario
from optimizer import Plan, Scenario, plan_scenario
from optimizer.shortfall import least_total_shortfall_kwh

RATIO_TARGET = 1.5


def timed_plan(scenario: Scenario, time_limit_s: float, mip_gap_frac: float) -> tuple[Plan, float]:
    started = time.perf_counter()
    plan = plan_scenario(scenario, "milp", time_limit_s=time_limit_s, mip_gap_frac=mip_gap_frac)
    return plan, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench shortfall", description=__doc__)
    parser.add_argument("--cars", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=None, help="default: cars / 2")
    parser.add_argument("--limit-frac", type=float, default=0.05, help="of each grid limit")
    parser.add_argument("--region", default="DE")
    parser.add_argument("--date", default="2020-06-10")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=600.0, help="per plan [s]")
    parser.add_argument("--mip-gap", type=float, default=0.005)
    args = parser.parse_args(argv)

    jobs = args.cars // 2 if args.jobs is None else args.jobs
    sites = demo_sites(max(1, round(args.cars / CARS_PER_SITE)), args.cars, args.region)
    loose = generate_scenario(args.cars, sites, jobs, date.fromisoformat(args.date), args.seed)
    binding = replace(
        loose,
        sites=tuple(
            replace(s, grid_limit_kw=s.grid_limit_kw * args.limit_frac) for s in loose.sites
        ),
    )
    loose_plan, loose_s = timed_plan(loose, args.time_limit, args.mip_gap)
    print(
        f"loose limits: {loose_plan.status.value} in {loose_s:.1f} s, "
        f"shortfall {loose_plan.shortfall_kwh:.1f} kWh, gap {loose_plan.gap_frac}"
    )
    binding_plan, binding_s = timed_plan(binding, args.time_limit, args.mip_gap)
    least_kwh = least_total_shortfall_kwh(binding)
    at_limit = sum(
        imp >= site.grid_limit_kw - 1e-6
        for site in binding.sites
        for imp in binding_plan.grid_import_kw[site.id]
    )
    short = sum(1 for v in binding_plan.vehicles.values() if v.shortfall_kwh > 0)
    print(
        f"binding limits ({args.limit_frac:g} of each): {binding_plan.status.value} in "
        f"{binding_s:.1f} s, {short} cars short by {binding_plan.shortfall_kwh:.1f} kWh "
        f"(least possible {least_kwh:.1f}), gap {binding_plan.gap_frac}; "
        f"{at_limit} site-slots import at the limit"
    )
    ratio = binding_s / loose_s
    print(
        f"cars={args.cars} loose_s={loose_s:.1f} binding_s={binding_s:.1f} ratio={ratio:.2f} "
        f"shortfall_kwh={binding_plan.shortfall_kwh:.1f} least_kwh={least_kwh:.1f}"
    )
    return 0 if ratio <= RATIO_TARGET else 1
