"""report.html: one self-contained page (inline CSS and SVG, no scripts, nothing loaded).

Sections: summary, KPIs, five charts (emissions per strategy, intensity against when work
and charging ran, PV use per site, sample vehicles against floor and target, daily or
monthly totals), owner statements, method (intensity source, GHG Protocol scope 2
location-based accounting, assumptions, forecast against actual) and the data files.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from idlefleet.report import charts
from idlefleet.report.days import DayResult
from idlefleet.sim.fleet import (
    CHARGER_KW,
    COMPUTE_KW,
    PARTICIPATION_FRAC,
    RESERVE_FRAC,
    TARGET_FRAC,
    WEAR_COST_PER_KWH,
)
from idlefleet.sim.scenarios import CARBON_PRICE_PER_TONNE, JOB_HOURS, LOAD_FRAC

STYLE = """
body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #555; }
.warning { background: #fde0dd; padding: 0.5rem 1rem; }
.owners { max-height: 30rem; overflow-y: auto; }
"""

#: KPI table rows: label, key, format.
KPI_ROWS: tuple[tuple[str, str, str], ...] = (
    ("emissions [kg CO2e, location-based]", "emissions_kg", "{:,.1f}"),
    ("  of which deferred (battery deficit) [kg]", "deferred_emissions_kg", "{:,.1f}"),
    ("emissions, marginal [kg]", "emissions_marginal_kg", "{:,.1f}"),
    ("savings vs immediate [kg]", "savings_vs_immediate_kg", "{:,.1f}"),
    ("savings vs immediate [%]", "savings_vs_immediate_pct", "{:.2f}"),
    ("savings vs greedy [kg]", "savings_vs_greedy_kg", "{:,.1f}"),
    ("savings vs greedy [%]", "savings_vs_greedy_pct", "{:.2f}"),
    ("grid energy [kWh]", "grid_energy_kwh", "{:,.1f}"),
    ("PV energy used [kWh]", "pv_energy_kwh", "{:,.1f}"),
    ("PV self-consumption [0-1]", "pv_self_consumption_frac", "{:.3f}"),
    ("energy charged [kWh]", "charge_energy_kwh", "{:,.1f}"),
    ("compute energy from batteries [kWh]", "compute_energy_kwh", "{:,.1f}"),
    ("battery throughput [kWh]", "battery_throughput_kwh", "{:,.1f}"),
    ("equivalent full cycles", "equivalent_full_cycles", "{:,.2f}"),
    ("wear cost [currency]", "wear_cost", "{:,.2f}"),
    ("energy cost [currency]", "energy_cost", "{:,.2f}"),
    ("jobs", "jobs", "{:,}"),
    ("jobs on time", "jobs_on_time", "{:,}"),
    ("shard executions", "executions", "{:,}"),
    ("unmet shard executions", "unmet_shards", "{:,}"),
    ("owners' departure shortfall [kWh]", "shortfall_kwh", "{:,.2f}"),
    ("owner-days", "owner_days", "{:,}"),
    ("owner-days with target and floor kept", "owner_days_met", "{:,}"),
    ("owners' targets met [0-1]", "owners_targets_met_frac", "{:.4f}"),
    ("DR events", "dr_events", "{:,}"),
    ("DR events honoured", "dr_events_honoured", "{:,}"),
    ("days proven within the MILP gap", "days_optimal", "{:,}"),
)

OWNER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("vehicle", "vehicle", "{}"),
    ("site", "site", "{}"),
    ("days", "days", "{:,}"),
    ("target met", "days_target_met", "{:,}"),
    ("short [kWh]", "shortfall_kwh", "{:,.2f}"),
    ("charged [kWh]", "charge_energy_kwh", "{:,.1f}"),
    ("compute [kWh]", "compute_energy_kwh", "{:,.2f}"),
    ("wear", "wear_cost", "{:,.2f}"),
    ("carbon [kg]", "emissions_kg", "{:,.2f}"),
    ("compensation", "compensation", "{:,.2f}"),
)


def _cell(value: Any, fmt: str) -> str:
    return "n/a" if value is None else escape(fmt.format(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{css}"' if css else ""
    return f"<div{attr}><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _figure(chart_id: str, svg: str, caption: str) -> str:
    return f'<figure id="chart-{chart_id}">{svg}<figcaption>{escape(caption)}</figcaption></figure>'


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{escape(title)}</h2>{body}</section>'


def _than(kpis: dict[str, Any], baseline: str, words: str) -> str:
    kg, pct = kpis[f"savings_vs_{baseline}_kg"], kpis[f"savings_vs_{baseline}_pct"]
    word = "less" if kg >= 0 else "more"
    share = "" if pct is None else f"{abs(pct):.1f}% "
    return f"{share}({abs(kg):,.1f} kg) {word} than {words}"


def summary_html(kpis: dict[str, Any]) -> str:
    strategies = kpis["strategies"]
    milp = strategies["milp"]
    planned_on = (
        "planned on the day-ahead forecast and accounted on the actual intensity"
        if kpis["forecast"] is not None
        else "planned and accounted on the scenario's intensity"
    )
    vs_immediate = _than(milp, "immediate", "charging on arrival (immediate)")
    vs_greedy = _than(milp, "greedy", "the carbon-aware greedy baseline")
    parts = [
        f"<p>Over {kpis['days_compared']} day(s), {planned_on}, the MILP emitted "
        f"<strong>{milp['emissions_kg']:,.1f} kg CO2e</strong>: {vs_immediate} and "
        f"{vs_greedy}.</p>",
        "<p>Shard executions run (of those asked for): "
        + "; ".join(
            f"{name} {s['executions']:,} of {s['executions_required']:,}"
            for name, s in strategies.items()
        )
        + ".</p>",
        "<p>Owners' departure targets and floors kept: "
        + "; ".join(
            f"{name} {s['owner_days_met']:,} of {s['owner_days']:,} owner-days"
            + (f" ({s['shortfall_kwh']:,.2f} kWh short)" if s["shortfall_kwh"] > 0 else "")
            for name, s in strategies.items()
        )
        + ".</p>",
    ]
    missed = {n: len(s["owners_targets_missed"]) for n, s in strategies.items()}
    if any(missed.values()):
        parts.append(
            '<p class="warning">Targets missed: '
            + ", ".join(f"{n}: {m}" for n, m in missed.items() if m)
            + " owner-day(s), listed in kpis.json (owners_targets_missed).</p>"
        )
    if kpis["days_excluded"]:
        rows = [
            [escape(str(e[k])) for k in ("day", "strategy", "status", "reason")]
            for e in kpis["days_excluded"]
        ]
        parts.append(
            '<p class="warning">Days without a plan from every strategy are left out of '
            "every total:</p>" + _table(["day", "strategy", "status", "reason"], rows)
        )
    return _section("summary", "Summary", "".join(parts))


def kpi_table_html(strategies: dict[str, dict[str, Any]]) -> str:
    names = list(strategies)
    rows = [
        [escape(label), *(_cell(strategies[n][key], fmt) for n in names)]
        for label, key, fmt in KPI_ROWS
    ]
    return _section("kpis", "Key figures", _table(["", *names], rows))


def owners_html(kpis: dict[str, Any]) -> str:
    rate = kpis["inputs"]["compensation_per_kwh"]
    statements = kpis["strategies"]["milp"]["owners"]
    rows = [[_cell(s[key], fmt) for _, key, fmt in OWNER_COLUMNS] for s in statements]
    intro = (
        f"<p>Under the MILP plan, per owner (vehicle id) over the period: energy charged, "
        f"energy their battery gave to compute, battery wear, the carbon attributable to "
        f"their charging (their share of the site's grid import, slot by slot, plus "
        f"deferred emissions of any deficit), and compensation at {rate:.2f} per kWh of "
        f"compute energy. The other strategies' statements are in kpis.json.</p>"
    )
    return _section(
        "owners", "Owner statements", intro + _table([c[0] for c in OWNER_COLUMNS], rows, "owners")
    )


def method_html(kpis: dict[str, Any]) -> str:
    inputs = kpis["inputs"]
    solver = (
        "The MILP (Pyomo + HiGHS) minimises the planning contract's objective: grid carbon "
        "at a price per tonne, battery wear and the value of work left undone. It is not a "
        "pure carbon minimiser: it may run more work, or less, than a baseline for the same "
        f"emissions (see the shard executions). It stops at a relative gap of "
        f"{inputs['mip_gap_frac']:g} or after {inputs['time_limit_s']:g} s per day. "
        "<code>greedy</code> (Carbon Aware SDK style) runs each job's shards in the "
        "cleanest slots of its window and charges in the cleanest slots, free PV first; "
        "<code>immediate</code> charges on arrival and computes as early as possible. Every "
        "plan is checked against every rule of the planning contract."
    )
    items = [
        f"<p><strong>Intensity source.</strong> {escape(inputs['intensity_source'])}. Values "
        "are average (location-based) lifecycle intensities of the electricity mix in "
        "gCO2e/kWh, per slot (time-weighted means of the source's 15-60 min samples).</p>",
        "<p><strong>Accounting.</strong> GHG Protocol Scope 2, location-based method: "
        "each slot's grid import at a site (charging load less on-site PV, never negative) "
        "times the average grid intensity of its region in that slot. On-site PV counts as "
        "zero at the point of use. Energy a plan leaves missing from a battery (its deficit "
        "against the arrival level) is counted as if bought back from the grid at the "
        "horizon's mean intensity, divided by the charging efficiency (deferred emissions), "
        "so that draining batteries never looks free. Marginal emission factors are not "
        "supplied by the data, so the marginal KPI is left empty (null); a market-based "
        "figure is not computed (no contractual instruments).</p>",
    ]
    forecast = kpis["forecast"]
    if forecast is None:
        items.append(
            "<p><strong>Planning.</strong> Every strategy planned on the scenario's own "
            "intensity, which is also the intensity the emissions are accounted on: no "
            "forecast was involved.</p>"
        )
    else:
        used = ", ".join(f"{name} on {n} day(s)" for name, n in forecast["forecaster_days"].items())
        items.append(
            "<p><strong>Planning on the forecast, accounting on the actual.</strong> Each "
            "strategy planned each UTC day on the day-ahead intensity forecast issued at "
            "midnight from data strictly before the day (ridge regression on lagged values; "
            f"fewer-day methods when history is short: {escape(used)}). Each resulting "
            "schedule was then accounted on the actual intensity. Forecast against actual "
            "over every slot:</p>"
            + _table(
                ["region", "MAE [g/kWh]", "bias [g/kWh]", "mean actual [g/kWh]", "MAE / mean"],
                [
                    [
                        escape(region),
                        f"{r['mae_g_per_kwh']:.1f}",
                        f"{r['bias_g_per_kwh']:+.1f}",
                        f"{r['mean_actual_g_per_kwh']:.1f}",
                        f"{r['mae_g_per_kwh'] / r['mean_actual_g_per_kwh']:.1%}",
                    ]
                    for region, r in forecast["regions"].items()
                ],
            )
        )
    items.append(f"<p><strong>Strategies.</strong> {solver}</p>")
    items.append(
        "<p><strong>Assumptions.</strong></p><ul>"
        + "".join(f"<li>{escape(a)}</li>" for a in assumptions(inputs))
        + "</ul>"
    )
    items.append(
        "<p><strong>Reproducibility.</strong> The same inputs give the same kpis.json: "
        + escape(", ".join(f"{k}={v}" for k, v in inputs.items()))
        + ".</p>"
    )
    return _section("method", "Method", "".join(items))


def assumptions(inputs: dict[str, Any]) -> list[str]:
    """What the figures rest on, in words."""
    common = [
        "Owners' targets are judged from each plan's energy path: the departure level is at "
        "least what the contract owes (the owner's target, or as close as full-power "
        "charging over the whole stay could come) and the level never drops below the "
        "floor (the owner's reserve, or the arrival level if lower).",
        "A car's carbon is its share of its site's grid import in each slot, in proportion "
        "to its charging power, plus the deferred emissions of its deficit.",
        f"Compensation is {inputs['compensation_per_kwh']:g} per kWh of battery energy used "
        "for compute; wear is each car's wear cost per kWh of battery throughput.",
        "Equivalent full cycles: battery throughput (energy in plus out) divided by twice "
        "the battery capacity, summed over cars and days.",
    ]
    if inputs["mode"] == "scenario":
        return [f"The scenario file {inputs['scenario']} is taken as given.", *common]
    return [
        f"A fixed fleet of {inputs['cars']} cars at {inputs['sites']} depots in "
        f"{inputs['region']}; each car id keeps its depot, but each day draws a fresh "
        "session (arrival time of day, stay, energy need) from 954 real Caltech ACN-Data "
        f"sessions, a battery size and participation ({PARTICIPATION_FRAC:.0%}), seeded "
        f"from {inputs['seed']} + the day's ordinal, so any day draws the same in any period.",
        "Each UTC day is planned alone, from midnight to midnight: stays are clipped at the "
        "day's end and nothing carries over to the next day.",
        f"Owners want {TARGET_FRAC:.0%} of the battery at departure and keep a "
        f"{RESERVE_FRAC:.0%} reserve; chargers of {CHARGER_KW:g} kW; computing draws "
        f"{COMPUTE_KW:g} kW; wear costs {WEAR_COST_PER_KWH:g} per kWh of throughput; carbon "
        f"is priced at {CARBON_PRICE_PER_TONNE:g} per tonne in the MILP's objective.",
        "On-site PV is pvlib's clear-sky output at each depot: no clouds, so PV is an upper "
        "bound, the same for every strategy.",
        f"{inputs['jobs_per_day']} synthetic inference jobs a day, sized to ask for "
        f"{LOAD_FRAC:.0%} of the parked car-slots, with deadlines of "
        f"{min(JOB_HOURS):g}-{max(JOB_HOURS):g} h, replicas and data residency.",
        f"Slots of {inputs['slot_minutes']} minutes.",
        "There are no demand-response events in generated days.",
    ]


def render_html(
    kpis: dict[str, Any], compared: Sequence[DayResult], files: Sequence[tuple[str, str]]
) -> str:
    """The report page; `compared` are the days every strategy planned, `files` the data
    files written beside it (name, description)."""
    inputs = kpis["inputs"]
    names = list(kpis["strategies"])
    title = (
        f"{inputs['region']}, {inputs['from']} to {inputs['to']}, {inputs['cars']} cars"
        if inputs["mode"] == "generated"
        else f"scenario {inputs['scenario']}"
    )
    figures = [
        (
            "emissions",
            "Emissions per strategy",
            charts.emissions_chart(kpis["strategies"]),
            "Total emissions on the actual intensity; the grey part is deferred emissions of "
            "energy left missing from batteries.",
        ),
    ]
    if compared:  # the other charts draw days
        figures += [
            (
                "intensity",
                "Carbon intensity and when work and charging ran",
                charts.intensity_chart(compared, names),
                "Mean over the days by time of day: the intensity (actual, and the forecast "
                "the plans saw), the fleet's charging power and the cars computing.",
            ),
            (
                "pv",
                "PV use per site",
                charts.pv_chart(compared, names),
                "Clear-sky PV generated at each depot and the part each strategy used.",
            ),
            (
                "vehicles",
                "Sample vehicles",
                charts.vehicles_chart(compared[0], names),
                "Energy in the batteries of a few cars on the first day, per strategy, "
                "against the owner's floor and target and the level owed at departure.",
            ),
            (
                "totals",
                "Daily and monthly totals",
                charts.totals_chart(compared, names),
                "Emissions per strategy per day, or per month for longer periods.",
            ),
        ]
    body = [
        f"<header><h1>idlefleet sustainability report</h1><p>{escape(title)}</p></header>",
        summary_html(kpis),
        kpi_table_html(kpis["strategies"]),
        *(
            _section(cid, heading, _figure(cid, svg, caption))
            for cid, heading, svg, caption in figures
        ),
        owners_html(kpis),
        method_html(kpis),
        _section(
            "files",
            "Data files",
            _table(["file", "contents"], [[escape(n), escape(d)] for n, d in files]),
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>idlefleet sustainability report: {escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )
