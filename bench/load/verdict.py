"""The run's outcome judged against its targets, and every line the benchmark prints: plans,
a line per minute, the summary and the last line."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections import Counter

import numpy as np

from bench.load.calls import CallLog, overall_p99_ms, percentiles_ms
from bench.load.feeder import FeedStats
from bench.load.probes import Sample, Ticker, TickRecord
from bench.load.schedule import Schedule

#: The lag at the end is bounded when the service is at most this far behind [s of traffic].
LAG_BOUND_S = 5.0
RSS_GROWTH_LIMIT_FRAC = 0.10
#: Failures the load provokes on purpose: a car away or just arrived is not in the plan.
EXPECTED_FAILURES = frozenset({("GetPlan(vehicle)", "NOT_FOUND")})


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Everything the run measured."""

    args: argparse.Namespace
    schedule: Schedule
    first_tick: TickRecord
    samples: list[Sample]
    calls: CallLog
    ticks: list[TickRecord]
    ticks_skipped: int
    tick_failure: BaseException | None
    feed: FeedStats


def print_plan(name: str, tick: TickRecord) -> None:
    plan = tick.report.replanned
    planned = "no re-plan" if plan is None else plan_text(tick)
    print(
        f"{name} at {tick.boundary:%Y-%m-%d %H:%M}Z: {planned}; {tick.report.assignments} "
        f"assignments, {tick.report.work_items} work items; tick took {tick.took_s:.1f} s",
        flush=True,
    )


def plan_text(tick: TickRecord) -> str:
    plan = tick.report.replanned
    assert plan is not None
    return (
        f"{plan.strategy} {plan.status} for {plan.vehicles} cars in {plan.solve_s:.1f} s "
        f"({','.join(plan.reasons)})"
    )


def minute_line(
    minute: int,
    schedule: Schedule,
    samples: list[Sample],
    calls: CallLog,
    ticker: Ticker,
    args: argparse.Namespace,
) -> str:
    """Lag, RSS, telemetry processed, API latency and ticks of one minute of load."""
    start_s = schedule.load_wall_s + (minute - 1) * 60
    end_s = start_s + 60
    inside = [s for s in samples if start_s - 1 <= s.wall_s <= end_s + 1]
    rate = (inside[-1].consumed - inside[0].consumed) / (inside[-1].wall_s - inside[0].wall_s)
    latency_ms = calls.window(start_s, end_s)[2]
    p50, p99 = percentiles_ms(latency_ms)
    failures = calls.failures(start_s, end_s)
    unexpected = sum(n for key, n in failures.items() if key not in EXPECTED_FAILURES)
    ticks = [
        f"tick at +{t.started_wall_s - start_s:.0f} s took {t.took_s:.1f} s"
        + ("" if t.report.replanned is None else f": {plan_text(t)}")
        for t in ticker.records
        if start_s <= t.started_wall_s < end_s
    ]
    return (
        f"minute {minute:2d}/{args.minutes}: lag max {max(s.lag_msgs for s in inside):5d} msgs, "
        f"RSS {inside[-1].rss_bytes / 2**20:6.0f} MB, telemetry in {rate:5.0f} msgs/s, "
        f"API n={len(latency_ms)} p50 {p50:.1f} ms p99 {p99:.1f} ms failed "
        f"{sum(failures.values())} ({unexpected} unexpected); {'; '.join(ticks) or 'no tick'}"
    )


def latency_table(outcome: Outcome) -> list[str]:
    """Lines of p50/p99 [ms] by call, with no telemetry (idle) and under load."""
    s, calls = outcome.schedule, outcome.calls
    idle = calls.window(s.idle_wall_s, s.load_wall_s)
    load = calls.window(s.load_wall_s, s.end_wall_s)
    lines = [
        f"  {'call':24s} {'idle n':>7s} {'p50':>7s} {'p99':>7s}   {'load n':>7s} "
        f"{'p50':>7s} {'p99':>7s}   p99 ratio"
    ]
    for index, label in [*enumerate(calls.labels), (-1, "all")]:
        idle_ms, load_ms = (
            latency_ms if index < 0 else latency_ms[labels == index]
            for labels, _, latency_ms in (idle, load)
        )
        p50_idle, p99_idle = percentiles_ms(idle_ms)
        p50_load, p99_load = percentiles_ms(load_ms)
        lines.append(
            f"  {label:24s} {len(idle_ms):7d} {p50_idle:7.1f} {p99_idle:7.1f}   {len(load_ms):7d} "
            f"{p50_load:7.1f} {p99_load:7.1f}   {p99_load / p99_idle:.2f}"
        )
    return lines


def tick_split_line(outcome: Outcome, p99_idle_ms: float) -> str:
    """API latency under load while a tick ran and while none did."""
    s = outcome.schedule
    spans = [(t.started_wall_s, t.started_wall_s + t.took_s) for t in outcome.ticks]
    during_ms, between_ms = outcome.calls.split_ms(s.load_wall_s, s.end_wall_s, spans)
    share = len(during_ms) / max(1, len(during_ms) + len(between_ms))
    p50_during, p99_during = percentiles_ms(during_ms)
    p50_between, p99_between = percentiles_ms(between_ms)
    return (
        f"  sent while a tick ran ({share:.0%} of calls): p50 {p50_during:.1f} p99 "
        f"{p99_during:.1f}; otherwise p50 {p50_between:.1f} p99 {p99_between:.1f} "
        f"({p99_between / p99_idle_ms:.2f} x idle)"
    )


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The run's figures against its targets: rates [records/s], lag [records], RSS [MB],
    latency [ms]."""

    offered: float
    sent: float
    ingested: float
    lag_max: int
    lag_end: int
    lag_bound: float
    rss_minute_1_mb: float
    rss_end_mb: float
    rss_last_half_mb: tuple[float, float]
    failures: Counter[tuple[str, str]]
    p99_load_ms: float
    p99_idle_ms: float
    tick_failed: bool

    @property
    def rss_growth_frac(self) -> float:
        return (self.rss_end_mb - self.rss_minute_1_mb) / self.rss_minute_1_mb

    @property
    def unexpected_failures(self) -> int:
        return sum(n for key, n in self.failures.items() if key not in EXPECTED_FAILURES)

    @property
    def ok(self) -> bool:
        return (
            self.lag_end <= self.lag_bound
            and self.rss_growth_frac < RSS_GROWTH_LIMIT_FRAC
            and not self.unexpected_failures
            and not self.tick_failed
        )


def judge(outcome: Outcome) -> Verdict:
    """The figures of the load phase (RSS from the end of its first minute)."""
    args, s = outcome.args, outcome.schedule
    load = [x for x in outcome.samples if x.wall_s >= s.load_wall_s - 1]
    offered = args.cars / args.telemetry_interval
    minute_1 = next(x for x in load if x.wall_s >= s.load_wall_s + min(60, args.minutes * 60) - 1)
    last_half_mb = [
        x.rss_bytes / 2**20 for x in load if x.wall_s >= s.end_wall_s - args.minutes * 30
    ]
    return Verdict(
        offered=offered,
        sent=outcome.feed.sent / outcome.feed.seconds,
        ingested=(load[-1].consumed - load[0].consumed) / (load[-1].wall_s - load[0].wall_s),
        lag_max=max(x.lag_msgs for x in load),
        lag_end=load[-1].lag_msgs,
        lag_bound=LAG_BOUND_S * offered,
        rss_minute_1_mb=minute_1.rss_bytes / 2**20,
        rss_end_mb=load[-1].rss_bytes / 2**20,
        rss_last_half_mb=(min(last_half_mb), max(last_half_mb)),
        failures=outcome.calls.failures(s.idle_wall_s, s.end_wall_s),
        p99_load_ms=overall_p99_ms(outcome.calls, s.load_wall_s, s.end_wall_s),
        p99_idle_ms=overall_p99_ms(outcome.calls, s.idle_wall_s, s.load_wall_s),
        tick_failed=outcome.tick_failure is not None,
    )


def summarise(outcome: Outcome) -> int:
    """Print the summary and the machine-readable last line; 0 when every target holds."""
    args, v = outcome.args, judge(outcome)
    print(
        f"\nsummary: {args.minutes} min of load after {args.idle_seconds:.0f} s of requests alone"
    )
    print(
        f"telemetry: offered {v.offered:.1f} reports/s, sent {v.sent:.1f}/s (at worst "
        f"{outcome.feed.behind_max_s:.2f} s behind schedule), processed {v.ingested:.1f} "
        f"records/s: {v.ingested / v.offered:.3f} of offered; {outcome.feed.refused} set points "
        f"refused (car not parked all slot)"
    )
    print(
        f"lag: max {v.lag_max} msgs ({v.lag_max / v.offered:.1f} s of traffic), at the end "
        f"{v.lag_end} ({v.lag_end / v.offered:.1f} s); bound {v.lag_bound:.0f} "
        f"({LAG_BOUND_S:.0f} s): {'bounded' if v.lag_end <= v.lag_bound else 'NOT bounded'}"
    )
    low_mb, high_mb = v.rss_last_half_mb
    print(
        f"memory: RSS {v.rss_minute_1_mb:.0f} MB at minute 1, {v.rss_end_mb:.0f} MB at the end: "
        f"{v.rss_growth_frac:+.2%} (limit {RSS_GROWTH_LIMIT_FRAC:.0%}): "
        f"{'flat' if v.rss_growth_frac < RSS_GROWTH_LIMIT_FRAC else 'GROWING'}; "
        f"{low_mb:.0f}-{high_mb:.0f} MB over the last half"
    )
    print_ticks(outcome)
    print(f"API at {args.rps:.0f} requests/s open loop, latency [ms]:")
    print("\n".join(latency_table(outcome)))
    print(tick_split_line(outcome, v.p99_idle_ms))
    for (label, code), n in sorted(v.failures.items()):
        expected = "expected" if (label, code) in EXPECTED_FAILURES else "UNEXPECTED"
        print(f"  failed: {label} {code} x{n} ({expected})")
    print(
        f"cars={args.cars} rps={args.rps:.0f} minutes={args.minutes} lag_max_msgs={v.lag_max} "
        f"lag_end_msgs={v.lag_end} rss_growth_frac={v.rss_growth_frac:.3f} "
        f"api_p99_ms={v.p99_load_ms:.1f} p99_ratio_vs_idle={v.p99_load_ms / v.p99_idle_ms:.2f} "
        f"ingest_ratio_vs_offered={v.ingested / v.offered:.3f}"
    )
    return 0 if v.ok else 1


def print_ticks(outcome: Outcome) -> None:
    """How planning went under load: ticks, re-plans and their solve times."""
    ticks = outcome.ticks
    plans = [t.report.replanned for t in ticks if t.report.replanned is not None]
    solve = sorted(p.solve_s for p in plans)
    kinds = Counter(f"{p.strategy} {p.status}" for p in plans)
    took = sorted(t.took_s for t in ticks)
    print(
        f"ticks: {len(ticks)} under load ({outcome.ticks_skipped} boundaries skipped), "
        f"{len(plans)} re-planned ({', '.join(f'{k} x{n}' for k, n in sorted(kinds.items()))}); "
        f"solve median {np.median(solve) if solve else math.nan:.1f} s, max "
        f"{max(solve, default=math.nan):.1f} s; tick median "
        f"{np.median(took) if took else math.nan:.1f} s, max {max(took, default=math.nan):.1f} s"
    )
    print(
        f"  dispatched {sum(t.report.assignments for t in ticks)} assignments with "
        f"{sum(t.report.work_items for t in ticks)} work items; cars the plan missed, charged "
        f"owner-first: {sum(len(t.report.fallback_vehicles) for t in ticks)}"
    )
    if outcome.tick_failure is not None:
        print(f"  tick FAILED: {outcome.tick_failure!r}")
