"""`idlefleet report`: a short period end to end through the command line, its KPIs
recomputed from the written CSVs, the HTML parsed, reproducibility and bad input."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from idlefleet.cli import main
from optimizer import load_scenario
from optimizer.shortfall import least_total_shortfall_kwh
from tests.optimizer.factories import one_car_three_slots

PERIOD = ["--region", "DE", "--from", "2020-06-10", "--to", "2020-06-12"]
FLEET = ["--cars", "12", "--sites", "2", "--jobs-per-day", "6", "--seed", "5"]
STRATEGIES = ("milp", "greedy", "immediate")
CHARTS = ("emissions", "intensity", "pv", "vehicles", "totals")
SECTIONS = ("summary", "kpis", *CHARTS, "owners", "method", "files")
TOL = 1e-6


def report(out: Path, *extra: str) -> tuple[int, str]:
    """Run the command; its exit code and what it wrote to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["report", *PERIOD, *FLEET, "--out", str(out), *extra])
    return code, err.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report")
    code, progress = report(out, "--workers", "1")
    assert code == 0, progress
    return out, progress


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def close(a: float, b: float, tol: float = TOL) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def test_one_progress_line_per_day(run: tuple[Path, str]) -> None:
    _, progress = run
    lines = [line for line in progress.splitlines() if line.startswith("[")]
    assert len(lines) == 3
    assert all("milp" in line and "ETA" in line for line in lines)


def test_kpis_recomputed_from_the_per_slot_and_per_vehicle_rows(run: tuple[Path, str]) -> None:
    out, _ = run
    kpis = json.loads((out / "kpis.json").read_text())
    dt_h = kpis["inputs"]["slot_minutes"] / 60
    rate = kpis["inputs"]["compensation_per_kwh"]
    slots, vehicles, jobs = (
        rows(out / "slots.csv"),
        rows(out / "vehicles.csv"),
        rows(out / "jobs.csv"),
    )
    assert kpis["days"] == kpis["days_compared"] == 3 and not kpis["days_excluded"]
    # the day's mean actual intensity, from one site's rows of one strategy
    per_day: dict[str, list[float]] = defaultdict(list)
    first_site = slots[0]["site"]
    for r in slots:
        if r["strategy"] == "milp" and r["site"] == first_site:
            per_day[r["day"]].append(float(r["intensity_g_per_kwh"]))
    mean_g = {day: sum(x) / len(x) for day, x in per_day.items()}
    assert all(len(x) == 48 for x in per_day.values())

    for name in STRATEGIES:
        s = kpis["strategies"][name]
        mine = [r for r in slots if r["strategy"] == name]
        cars = [r for r in vehicles if r["strategy"] == name]
        work = [r for r in jobs if r["strategy"] == name]
        site_charge_kwh: dict[tuple[str, str], float] = defaultdict(float)
        for r in mine:
            charge, pv = float(r["charge_kw"]), float(r["pv_kw"])
            assert close(float(r["grid_import_kw"]), max(0.0, charge - pv))  # rule 8
            assert close(float(r["pv_used_kw"]), min(charge, pv))
            site_charge_kwh[r["day"], r["site"]] += charge * dt_h
        grid_g = sum(
            float(r["grid_import_kw"]) * dt_h * float(r["intensity_g_per_kwh"]) for r in mine
        )
        deferred_g = sum(
            float(r["deficit_kwh"]) / float(r["charge_efficiency_frac"]) * mean_g[r["day"]]
            for r in cars
        )
        assert close(s["emissions_kg"], (grid_g + deferred_g) / 1000)
        assert close(s["deferred_emissions_kg"], deferred_g / 1000)
        assert s["emissions_marginal_kg"] is None  # no marginal data supplied
        assert close(s["grid_energy_kwh"], sum(float(r["grid_import_kw"]) * dt_h for r in mine))
        pv_used = sum(float(r["pv_used_kw"]) * dt_h for r in mine)
        pv_made = sum(float(r["pv_kw"]) * dt_h for r in mine)
        assert close(s["pv_energy_kwh"], pv_used)
        assert close(s["pv_self_consumption_frac"], pv_used / pv_made)

        throughput = [
            float(r["charge_efficiency_frac"]) * float(r["charge_energy_kwh"])
            + float(r["compute_energy_kwh"])
            for r in cars
        ]
        assert all(
            close(t, float(r["throughput_kwh"])) for t, r in zip(throughput, cars, strict=True)
        )
        assert close(s["battery_throughput_kwh"], sum(throughput))
        assert close(
            s["equivalent_full_cycles"],
            sum(t / (2 * float(r["battery_kwh"])) for t, r in zip(throughput, cars, strict=True)),
        )
        assert close(s["wear_cost"], sum(float(r["wear_cost"]) for r in cars))
        assert close(s["charge_energy_kwh"], sum(float(r["charge_energy_kwh"]) for r in cars))
        by_site: dict[tuple[str, str], float] = defaultdict(float)
        for r in cars:
            by_site[r["day"], r["site"]] += float(r["charge_energy_kwh"])
        assert all(close(by_site[key], kwh) for key, kwh in site_charge_kwh.items())
        # every car's carbon adds up to the strategy's emissions
        assert close(sum(float(r["emissions_kg"]) for r in cars), s["emissions_kg"])

        met = [
            r
            for r in cars
            if (not r["owed_kwh"] or float(r["departure_kwh"]) >= float(r["owed_kwh"]) - TOL)
            and float(r["lowest_kwh"]) >= float(r["floor_kwh"]) - TOL
        ]
        assert s["owner_days"] == len(cars) == 3 * 12
        assert s["owner_days_met"] == len(met) == len(cars)
        assert s["owners_targets_met_frac"] == 1.0 and s["owners_targets_missed"] == []

        unmet = sum(max(0, int(r["executions_required"]) - int(r["executions"])) for r in work)
        assert s["unmet_shards"] == unmet
        assert s["jobs"] == len(work) == 3 * 6
        assert s["jobs_on_time"] == sum(
            int(r["executions"]) >= int(r["executions_required"]) for r in work
        )
        assert s["dr_events"] == s["dr_events_honoured"] == 0

        statements = {o["vehicle"]: o for o in s["owners"]}
        assert len(statements) == 12
        for vid, o in statements.items():
            own = [r for r in cars if r["vehicle"] == vid]
            compute_kwh = sum(float(r["compute_energy_kwh"]) for r in own)
            assert o["days"] == 3
            assert close(o["compute_energy_kwh"], compute_kwh)
            assert close(o["compensation"], rate * compute_kwh)
            assert close(o["emissions_kg"], sum(float(r["emissions_kg"]) for r in own))

    totals = {name: kpis["strategies"][name]["emissions_kg"] for name in STRATEGIES}
    milp = kpis["strategies"]["milp"]
    for baseline in ("immediate", "greedy"):
        saved = totals[baseline] - totals["milp"]
        assert close(milp[f"savings_vs_{baseline}_kg"], saved)
        assert close(milp[f"savings_vs_{baseline}_pct"], 100 * saved / totals[baseline])
    assert totals["milp"] < totals["immediate"]


def test_forecast_against_actual_is_measured(run: tuple[Path, str]) -> None:
    out, _ = run
    kpis = json.loads((out / "kpis.json").read_text())
    errors = [
        abs(float(r["forecast_g_per_kwh"]) - float(r["intensity_g_per_kwh"]))
        for r in rows(out / "slots.csv")
        if r["strategy"] == "milp" and r["site"] == "berlin-depot-0001"
    ]
    region = kpis["forecast"]["regions"]["DE"]
    assert close(region["mae_g_per_kwh"], sum(errors) / len(errors))
    assert region["mae_g_per_kwh"] > 0  # the plans did not see the actual series
    assert kpis["forecast"]["forecaster_days"] == {"lagged-ridge": 3}


class Page(HTMLParser):
    """Sections, figures with their inline SVGs, and anything that would load from outside."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.figures: dict[str, int] = {}
        self.figure: str | None = None
        self.loads: list[tuple[str, str]] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(found.get("id") or "")
        if tag == "figure":
            self.figure = found.get("id") or ""
            self.figures[self.figure] = 0
        if tag == "svg" and self.figure is not None:
            self.figures[self.figure] += 1
        for name, value in attrs:
            if name == "src" or (name.endswith("href") and not (value or "").startswith("#")):
                self.loads.append((name, value or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self.figure = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_page_has_every_chart_and_section_and_loads_nothing(run: tuple[Path, str]) -> None:
    out, _ = run
    page = Page()
    page.feed((out / "report.html").read_text())
    assert page.sections == list(SECTIONS)
    assert page.figures == {f"chart-{c}": 1 for c in CHARTS}
    assert page.loads == []
    assert not page.tags & {"script", "link", "img", "iframe", "object"}
    text = " ".join(page.text)
    for phrase in ("GHG Protocol Scope 2", "location-based", "day-ahead", "MAE", "Assumptions"):
        assert phrase in text
    assert "lagged-ridge on 3 day(s)" in text


def test_same_inputs_give_the_same_report_with_any_number_of_workers(
    run: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = run
    code, _ = report(tmp_path, "--workers", "2")
    assert code == 0
    for name in ("kpis.json", "slots.csv", "vehicles.csv", "report.html"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--region", "XX", "--from", "2020-06-10", "--to", "2020-06-11", "--cars", "5"],
         "--region"),
        (["--region", "DE", "--from", "2020-06-12", "--to", "2020-06-10", "--cars", "5"],
         "--to"),
        (["--region", "DE", "--from", "2020-03-01", "--to", "2020-03-02", "--cars", "5"],
         "--shared-data"),
        (["--region", "DE", "--from", "2020-06-10", "--to", "2020-06-31", "--cars", "5"],
         "--to"),
        (["--region", "DE", "--from", "2020-06-10", "--to", "2020-06-11"], "--cars"),
        (["x.json", "--region", "DE"], "SCENARIO.json"),
        (["--region", "DE", "--from", "2020-06-10", "--to", "2020-06-11", "--cars", "5",
          "--slot-minutes", "7"], "--slot-minutes"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_naming_the_option_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], option: str
) -> None:
    out = tmp_path / "out"
    assert main(["report", *args, "--out", str(out)]) == 2
    assert option in capsys.readouterr().err
    assert not out.exists()


def scenario_doc() -> dict[str, Any]:
    """One car owed 10 kWh more over three hourly slots; the cleanest is the second."""
    return one_car_three_slots(charge_efficiency_frac=0.92, compute_kw=0.3, wear_cost_per_kwh=0.05)


def test_a_scenario_file_has_its_obvious_figures(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario_doc()))
    out = tmp_path / "out"
    assert main(["report", str(path), "--out", str(out)]) == 0
    kpis = json.loads((out / "kpis.json").read_text())
    drawn_kwh = 10.0 / 0.92
    s = kpis["strategies"]
    assert close(s["milp"]["emissions_kg"], drawn_kwh * 100 / 1000)  # the cleanest slot
    assert close(s["greedy"]["emissions_kg"], drawn_kwh * 100 / 1000)
    assert close(s["immediate"]["emissions_kg"], drawn_kwh * 400 / 1000)  # on arrival
    assert close(s["milp"]["savings_vs_immediate_pct"], 75.0)
    assert close(s["milp"]["savings_vs_greedy_kg"], 0.0)
    assert close(s["milp"]["battery_throughput_kwh"], 10.0)
    assert close(s["milp"]["equivalent_full_cycles"], 10.0 / 120.0)
    assert close(s["milp"]["wear_cost"], 0.5)
    assert s["milp"]["owners"][0]["compensation"] == 0.0  # no jobs: no compute
    assert kpis["forecast"] is None
    page = Page()
    page.feed((out / "report.html").read_text())
    assert page.sections == list(SECTIONS)
    assert "no forecast was involved" in " ".join(page.text)


def test_a_day_the_connection_cannot_serve_is_reported_with_its_shortfall(
    tmp_path: Path,
) -> None:
    doc = scenario_doc()
    doc["sites"][0]["grid_limit_kw"] = 15.0
    car = {**doc["vehicles"][0], "departure": "2020-06-01T01:00:00Z", "target_kwh": 30.0}
    doc["vehicles"] = [car, {**car, "id": "other"}]  # each needs 10.9 kW in the one hour
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert main(["report", str(path), "--out", str(out)]) == 0
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["days_compared"] == 1 and kpis["days_excluded"] == []
    least = least_total_shortfall_kwh(load_scenario(path))
    for name in STRATEGIES:
        s = kpis["strategies"][name]
        assert s["shortfall_kwh"] >= least - 1e-4
        assert s["owners_targets_met_frac"] < 1.0
        assert sum(o["shortfall_kwh"] for o in s["owners"]) == pytest.approx(s["shortfall_kwh"])
    assert kpis["strategies"]["milp"]["shortfall_kwh"] == pytest.approx(least, abs=1e-4)
    page = Page()
    page.feed((out / "report.html").read_text())
    assert "owners' departure shortfall [kWh]" in " ".join(page.text)
