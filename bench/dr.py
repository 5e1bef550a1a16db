"""How fast the fleet answers a demand-response event: plan with the cap for a large site.

`idlefleet bench dr [--cars N]` builds one depot with N cars from real Caltech sessions and
June 2020 intensity, plans the day without an event (the in-run baseline), then decides a
two-hour evening cap at half the site's grid limit the way the VEN does (scenario + caps →
MILP → optIn/optOut). Last line: `cars=… decide_s=… baseline_plan_s=… ratio=… honoured=…`.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from forecasting.carbon import intensity_on_grid
from forecasting.timegrid import SlotGrid
from idlefleet.demo.summary import hindsight_scenario
from idlefleet.service.dr import PlanningDecider
from idlefleet.sim.catalog import demo_sites
from idlefleet.sim.fleet import generate_fleet
from optimizer import plan_scenario
from streams.messages import DemandResponseEvent

START = datetime(2020, 6, 10, tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench dr", description=__doc__)
    parser.add_argument("--cars", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    sites = demo_sites(1, args.cars)
    grid = SlotGrid(START, 15, 96)
    fleet = generate_fleet(args.cars, sites, START, 24, 15, np.random.default_rng(args.seed))
    intensity = {sites[0].region: intensity_on_grid(sites[0].region, grid).tolist()}
    scenario = hindsight_scenario(grid, sites, fleet, [], [], intensity, 100.0)

    started = time.perf_counter()
    baseline = plan_scenario(scenario, "milp", time_limit_s=30)
    baseline_s = time.perf_counter() - started

    cap = DemandResponseEvent(
        event_id="evening-peak",
        site_id=sites[0].site_id,
        start=START + timedelta(hours=17),
        end=START + timedelta(hours=19),
        max_import_kw=0.5 * sites[0].grid_limit_kw,
    )
    decider = PlanningDecider(lambda: scenario, lambda c: None, lambda s: 0.0, lambda s: 0.0)
    decision = decider.decide([cap])
    print(
        f"baseline plan: {baseline.status.value} in {baseline_s:.2f} s; "
        f"with the cap: {decision.reason} in {decision.plan_s:.2f} s"
    )
    print(
        f"cars={args.cars} decide_s={decision.plan_s:.2f} baseline_plan_s={baseline_s:.2f} "
        f"ratio={decision.plan_s / baseline_s:.2f} honoured={decision.honour}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
