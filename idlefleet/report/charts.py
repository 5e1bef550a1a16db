"""The report's charts: matplotlib figures rendered to SVG text for inlining.

Rendering is reproducible: no date or creator metadata, and a fixed hash salt per chart
(which also keeps the ids of clip paths and markers distinct between inlined charts).
Text stays text (`svg.fonttype = none`), so the SVG holds no glyph outlines.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from idlefleet.report.days import DayResult

COLORS = {"milp": "#1b7837", "greedy": "#2166ac", "immediate": "#b2182b"}
DAILY_AT_MOST_DAYS = 62


def render_svg(fig: Figure, name: str) -> str:
    """`fig` as an `<svg>` element (no XML prolog), reproducible byte for byte."""
    matplotlib.use("Agg")
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"idlefleet-{name}", "svg.fonttype": "none"}):
        fig.savefig(
            buffer,
            format="svg",
            bbox_inches="tight",
            metadata={"Date": None, "Creator": None, "Type": None, "Format": None},
        )
    text = buffer.getvalue()
    return text[text.index("<svg") :].strip()


def emissions_chart(strategies: dict[str, dict[str, Any]]) -> str:
    """Bars: each strategy's emissions [kg CO2e], grid import and deferred (deficit) parts."""
    fig = Figure(figsize=(6.0, 3.2), layout="constrained")
    ax = fig.add_subplot()
    names = list(strategies)
    deferred = np.array([strategies[n]["deferred_emissions_kg"] for n in names])
    grid = np.array([strategies[n]["emissions_kg"] for n in names]) - deferred
    ax.bar(names, grid, color=[COLORS.get(n, "grey") for n in names], label="grid import")
    ax.bar(names, deferred, bottom=grid, color="#bbbbbb", label="deferred (battery deficit)")
    for i, total in enumerate(grid + deferred):
        ax.annotate(f"{total:,.0f} kg", (i, total), ha="center", va="bottom", fontsize=9)
    ax.margins(y=0.15)
    ax.set_ylabel("emissions [kg CO2e]")
    ax.set_title("Location-based emissions per strategy (actual intensity)")
    ax.legend(loc="upper left", fontsize=8)
    return render_svg(fig, "emissions")


def _minute_of_day(day: DayResult) -> np.ndarray:
    start = day.start.hour * 60 + day.start.minute
    return (start + day.slot_minutes * np.arange(day.slots)) % (24 * 60)


def intensity_chart(days: Sequence[DayResult], names: Sequence[str]) -> str:
    """The average day (UTC): actual and forecast intensity, and when each strategy charged
    [kW, all sites] and computed [running cars]."""
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for day in days:
        minutes = _minute_of_day(day)
        for region, values in day.actual_g_per_kwh.items():
            for m, x in zip(minutes, values, strict=True):
                sums[f"actual {region}"][m].append(float(x))
        for region, values in (day.forecast_g_per_kwh or {}).items():
            for m, x in zip(minutes, values, strict=True):
                sums[f"forecast {region}"][m].append(float(x))
        for name in names:
            run = day.strategies[name]
            charge = np.sum([s.charge_kw for s in run.sites.values()], axis=0)
            running = np.sum([s.running_vehicles for s in run.sites.values()], axis=0)
            for i, m in enumerate(minutes):
                sums[f"charge {name}"][m].append(float(charge[i]))
                sums[f"running {name}"][m].append(float(running[i]))

    def profile(key: str) -> tuple[np.ndarray, np.ndarray]:
        slots = sorted(sums[key])
        return np.array(slots) / 60.0, np.array([np.mean(sums[key][m]) for m in slots])

    fig = Figure(figsize=(8.0, 7.0), layout="constrained")
    top, middle, bottom = fig.subplots(3, 1, sharex=True)
    for key in sorted(k for k in sums if k.startswith(("actual", "forecast"))):
        hours, values = profile(key)
        top.step(
            hours, values, where="post", label=key, linestyle="--" if "forecast" in key else "-"
        )
    top.set_ylabel("intensity [gCO2/kWh]")
    top.set_title(f"Average day over {len(days)} day(s), UTC")
    top.legend(fontsize=8)
    for name in names:
        hours, charge = profile(f"charge {name}")
        middle.step(hours, charge, where="post", color=COLORS.get(name), label=name)
        hours, running = profile(f"running {name}")
        bottom.step(hours, running, where="post", color=COLORS.get(name), label=name)
    middle.set_ylabel("charging [kW]")
    middle.legend(fontsize=8)
    bottom.set_ylabel("cars computing")
    bottom.set_xlabel("hour of day (UTC)")
    bottom.set_xlim(0, 24)
    bottom.set_xticks(range(0, 25, 3))
    return render_svg(fig, "intensity")


def pv_chart(days: Sequence[DayResult], names: Sequence[str]) -> str:
    """Per site: PV generated and PV used by each strategy [kWh over the days]."""
    sites = sorted(days[0].pv_kw)
    generated = np.array([sum(float(np.sum(d.pv_kw[s])) * d.dt_h for d in days) for s in sites])
    fig = Figure(
        figsize=(7.0, 1.2 + 0.45 * len(sites) * (len(names) + 1) / 2), layout="constrained"
    )
    ax = fig.add_subplot()
    height = 0.8 / (len(names) + 1)
    y = np.arange(len(sites))
    ax.barh(y, generated, height, color="#fdb863", label="PV generated")
    for k, name in enumerate(names):
        used = [
            sum(float(np.sum(d.strategies[name].sites[s].pv_used_kw)) * d.dt_h for d in days)
            for s in sites
        ]
        ax.barh(y + (k + 1) * height, used, height, color=COLORS.get(name), label=f"used: {name}")
    ax.set_yticks(y + height * len(names) / 2, sites, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("energy [kWh]")
    ax.set_title("PV use per site")
    ax.legend(fontsize=8, loc="lower right")
    return render_svg(fig, "pv")


def vehicles_chart(day: DayResult, names: Sequence[str]) -> str:
    """Energy in the battery of the day's sample vehicles per strategy [kWh], with the
    owner's floor and target and the level owed at departure."""
    ids = day.sample_vehicles
    planned = [name for name in names if day.strategies[name].planned]
    fig = Figure(figsize=(8.0, 2.4 * max(1, len(ids))), layout="constrained")
    axes = fig.subplots(max(1, len(ids)), 1, squeeze=False)[:, 0]
    hours = np.arange(day.slots + 1) * day.dt_h
    for ax, vid in zip(axes, ids, strict=False):
        row = next(v for v in day.strategies[planned[0]].vehicles if v.vehicle_id == vid)
        for name in planned:
            soc = day.strategies[name].soc_samples_kwh[vid]
            values = np.array([np.nan if x is None else x for x in soc])
            ax.plot(hours, values, color=COLORS.get(name), label=name)
        ax.axhline(row.floor_kwh, color="black", linestyle=":", label="floor")
        ax.axhline(row.target_kwh, color="grey", linestyle="--", label="owner's target")
        if row.owed_kwh is not None:
            last = max(b for b, x in enumerate(soc) if x is not None)
            ax.plot([hours[last]], [row.owed_kwh], "v", color="black", label="owed at departure")
        ax.set_ylim(0, row.battery_kwh)
        ax.set_ylabel("energy [kWh]")
        ax.set_title(f"{vid} at {row.site_id} on {day.label}", fontsize=9)
    if ids:
        axes[0].legend(fontsize=7, ncol=3)
    else:
        axes[0].set_title("no vehicle was owed charge on this day")
    axes[-1].set_xlabel(f"hours after {day.start:%Y-%m-%d %H:%M} UTC")
    return render_svg(fig, "vehicles")


def totals_chart(days: Sequence[DayResult], names: Sequence[str]) -> str:
    """Emissions per strategy per day (up to `DAILY_AT_MOST_DAYS` days) or month [kg];
    `days` are days every strategy planned."""
    daily = len(days) <= DAILY_AT_MOST_DAYS
    periods: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for day in days:
        key = day.label if daily else f"{day.start + timedelta(hours=12):%Y-%m}"
        for name in names:
            kpis = day.strategies[name].kpis
            assert kpis is not None, "totals are drawn over days every strategy planned"
            periods[key][name] += kpis.emissions_kg
    keys = list(periods)
    fig = Figure(figsize=(8.0, 3.4), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    x = np.arange(len(keys))
    for k, name in enumerate(names):
        values = [periods[key][name] for key in keys]
        ax.bar(x + k * width, values, width, color=COLORS.get(name), label=name)
    step = max(1, len(keys) // 12)
    ax.set_xticks(x[::step] + width * (len(names) - 1) / 2, keys[::step], rotation=30, fontsize=8)
    ax.set_ylabel("emissions [kg CO2e]")
    ax.set_title(("Daily" if daily else "Monthly") + " emissions per strategy")
    ax.legend(fontsize=8)
    return render_svg(fig, "totals")
