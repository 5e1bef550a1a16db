"""`idlefleet report`: a sustainability report from a batch run of every strategy.

Either one scenario-v1 file, planned and accounted on its own intensity, or a period of
generated days in one region, each planned on the day-ahead forecast and accounted on the
actual intensity. Writes DIR/report.html, DIR/kpis.json and CSVs. Bad input exits with
status 2 and a message naming the option; nothing is written then.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from forecasting.regions import REGIONS
from idlefleet.commands import EXIT_BAD_INPUT

#: Options of generated days by argparse destination.
GENERATED = {"region": "--region", "first": "--from", "last": "--to", "cars": "--cars"}


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "report",
        help="sustainability report: every strategy on the same days, HTML, KPIs and CSVs",
        description="Run milp, greedy and immediate on a scenario file or on generated days "
        "and write DIR/report.html, DIR/kpis.json and per-slot CSVs.",
    )
    parser.add_argument("scenario", nargs="?", help="SCENARIO.json (instead of generated days)")
    parser.add_argument("--region", metavar="|".join(REGIONS), help="grid region")
    parser.add_argument("--from", dest="first", metavar="DATE", help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--to", dest="last", metavar="DATE", help="last UTC day (included)")
    parser.add_argument("--cars", type=int, metavar="N", help="cars in the fleet")
    parser.add_argument("--sites", type=int, metavar="K", default=4, help="depots (default 4)")
    parser.add_argument(
        "--jobs-per-day", type=int, metavar="J", help="jobs a day (default: half the cars)"
    )
    parser.add_argument(
        "--seed", type=int, metavar="S", default=0, help="seed of the draws (default 0)"
    )
    parser.add_argument(
        "--slot-minutes", type=int, metavar="MIN", default=30, help="slot length (default 30)"
    )
    parser.add_argument("--shared-data", metavar="DIR", help="full 2020 intensity files")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=120.0,
        metavar="S",
        help="MILP seconds per day (default 120)",
    )
    parser.add_argument(
        "--mip-gap", type=float, default=0.005, metavar="F", help="relative gap (0.005)"
    )
    parser.add_argument(
        "--compensation-per-kwh",
        type=float,
        metavar="X",
        default=0.30,
        help="paid to owners per kWh of battery energy used for compute (default 0.30)",
    )
    parser.add_argument("--workers", type=int, metavar="N", default=2, help="processes (default 2)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.set_defaults(handler=run)


class ReportInputError(ValueError):
    """Arguments that cannot make a report; the message names the option."""


def _date(text: str | None, option: str) -> date:
    try:
        return date.fromisoformat(text or "")
    except ValueError as exc:
        raise ReportInputError(f"{option}: expected a date YYYY-MM-DD, got {text!r}") from exc


def _common_inputs(args: argparse.Namespace) -> dict[str, Any]:
    if args.time_limit <= 0:
        raise ReportInputError(f"--time-limit must be positive, got {args.time_limit}")
    if not 0 <= args.mip_gap < 1:
        raise ReportInputError(f"--mip-gap must be in [0, 1), got {args.mip_gap}")
    if args.compensation_per_kwh < 0:
        raise ReportInputError(
            f"--compensation-per-kwh must be >= 0, got {args.compensation_per_kwh}"
        )
    if args.workers < 1:
        raise ReportInputError(f"--workers must be >= 1, got {args.workers}")
    return {
        "mip_gap_frac": args.mip_gap,
        "time_limit_s": args.time_limit,
        "compensation_per_kwh": args.compensation_per_kwh,
    }


def run(args: argparse.Namespace) -> int:
    given = [name for name in GENERATED if getattr(args, name) is not None]
    try:
        common = _common_inputs(args)
        if args.scenario is not None:
            if given:
                raise ReportInputError(
                    "give SCENARIO.json or --region/--from/--to/--cars, not both"
                )
            return _run_scenario(args, common)
        missing = [option for name, option in GENERATED.items() if getattr(args, name) is None]
        if missing:
            raise ReportInputError(
                f"give SCENARIO.json, or {', '.join(missing)} for generated days"
            )
        return _run_period(args, common)
    except ReportInputError as exc:
        print(f"idlefleet report: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _run_scenario(args: argparse.Namespace, common: dict[str, Any]) -> int:
    from idlefleet.report.batch import SolverOptions, run_day
    from idlefleet.report.write import write_report
    from optimizer import ScenarioError, Strategy, load_scenario

    try:
        scenario = load_scenario(Path(args.scenario))
    except ScenarioError as exc:
        raise ReportInputError(f"{args.scenario}: {exc}") from exc
    except OSError as exc:
        raise ReportInputError(f"{args.scenario}: {exc.strerror}") from exc
    solver = SolverOptions(args.time_limit, args.mip_gap)
    day = run_day(args.scenario, scenario, scenario, None, solver)
    inputs = {
        "mode": "scenario",
        "scenario": args.scenario,
        "intensity_source": f"regions[].intensity_g_per_kwh of {args.scenario}",
        **common,
    }
    kpis = write_report(Path(args.out), [day], list(Strategy), inputs)
    _print_headline(kpis, Path(args.out))
    return 0


def _run_period(args: argparse.Namespace, common: dict[str, Any]) -> int:
    from forecasting.carbon import IntensityCoverageError, intensity_source
    from idlefleet.report.batch import (
        FleetConfig,
        SolverOptions,
        check_coverage,
        run_period,
    )
    from idlefleet.report.write import write_report
    from idlefleet.sim.catalog import demo_sites
    from optimizer import Strategy

    if args.region not in REGIONS:
        raise ReportInputError(f"--region must be one of {', '.join(REGIONS)}, got {args.region!r}")
    first, last = _date(args.first, "--from"), _date(args.last, "--to")
    if last < first:
        raise ReportInputError(f"--to ({last}) is before --from ({first})")
    if args.cars < 1:
        raise ReportInputError(f"--cars must be >= 1, got {args.cars}")
    jobs = args.cars // 2 if args.jobs_per_day is None else args.jobs_per_day
    if jobs < 0:
        raise ReportInputError(f"--jobs-per-day must be >= 0, got {jobs}")
    if args.slot_minutes < 1 or 1440 % args.slot_minutes:
        raise ReportInputError(f"--slot-minutes must divide a day, got {args.slot_minutes}")
    try:
        demo_sites(args.sites, args.cars, args.region)
    except ValueError as exc:
        raise ReportInputError(str(exc)) from exc
    data_dir = Path(args.shared_data) if args.shared_data else None
    config = FleetConfig(
        args.region, args.cars, args.sites, jobs, args.seed, args.slot_minutes, data_dir
    )
    try:
        check_coverage(config, first, last)
    except FileNotFoundError as exc:
        raise ReportInputError(f"--shared-data: {exc}") from exc
    except IntensityCoverageError as exc:
        hint = "" if data_dir else "; pass --shared-data DIR with the full 2020 files"
        raise ReportInputError(f"--from/--to {first}..{last}: {exc}{hint}") from exc
    started = time.monotonic()
    solver = SolverOptions(args.time_limit, args.mip_gap)
    days = run_period(config, solver, first, last, args.workers, sys.stderr)
    inputs = {
        "mode": "generated",
        "region": args.region,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "cars": args.cars,
        "sites": args.sites,
        "jobs_per_day": jobs,
        "seed": args.seed,
        "slot_minutes": args.slot_minutes,
        "intensity_source": intensity_source(args.region, data_dir),
        **common,
    }
    kpis = write_report(Path(args.out), days, list(Strategy), inputs)
    _print_headline(kpis, Path(args.out))
    print(f"wall time {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


def _print_headline(kpis: dict[str, Any], out: Path) -> None:
    """Each strategy's emissions and savings, and the owners' targets met, on stdout."""

    def saving(s: dict[str, Any], baseline: str) -> str:
        pct = s[f"savings_vs_{baseline}_pct"]
        share = "n/a" if pct is None else f"{pct:.2f}%"
        return f"vs {baseline} {share} ({s[f'savings_vs_{baseline}_kg']:,.1f} kg)"

    for name, s in kpis["strategies"].items():
        print(
            f"{name:<10} {s['emissions_kg']:>12,.1f} kg CO2e  {saving(s, 'immediate')}  "
            f"{saving(s, 'greedy')}  owners met {s['owner_days_met']}/{s['owner_days']}"
        )
    print(f"wrote {out / 'report.html'}, {out / 'kpis.json'} and CSVs")
