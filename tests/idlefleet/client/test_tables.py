"""Tables and JSON of real API responses."""

from __future__ import annotations

import json

from idlefleet.client.fleet import FleetClient
from idlefleet.client.tables import (
    as_json,
    fleet_text,
    flexibility_text,
    job_text,
    jobs_text,
    plan_text,
    table,
)


def test_columns_are_aligned_numbers_right_text_left() -> None:
    text = table(["name", "power kW", "note"], [("a", 1.25, "x"), ("longer", 10.0, None)])
    assert text == (
        "name    power kW  note\n------  --------  ----\na            1.2  x\nlonger      10.0  -\n"
    )


def test_jobs_and_a_job(viewer: FleetClient) -> None:
    jobs = viewer.list_jobs()
    lines = jobs_text(jobs).splitlines()
    assert lines[0].split()[:3] == ["job", "state", "accepted"]
    assert lines[2].split()[:7] == ["embed-1", "open", "0", "0", "4", "4", "4"]
    assert len({len(lines[1]), len(lines[2].rstrip())}) == 1  # the row fills every column
    detail = job_text(jobs[0])
    assert "executions accepted: 0 / 4" in detail and "shards x replicas:   4 x 1" in detail
    assert jobs_text([]) == "no jobs\n"


def test_fleet_status(viewer: FleetClient) -> None:
    text = fleet_text(viewer.fleet_status())
    assert "cars: 4 known, 4 parked, 3 computing" in text
    assert "jobs: 0 pending, 1 open, 0 done" in text
    berlin = next(line for line in text.splitlines() if line.startswith("berlin-depot"))
    assert berlin.split()[:5] == ["berlin-depot", "DE", "30.0", "2", "2"]
    assert "plan plan-" in text and "milp" in text


def test_plan_and_flexibility(viewer: FleetClient) -> None:
    plan = plan_text(viewer.plan(site_id="berlin-depot"))
    assert plan.startswith("site berlin-depot\nplan plan-")
    assert plan.count("2020-06-01 ") >= 16 and "embed-1 x" in plan
    flex = flexibility_text(viewer.flexibility("berlin-depot"))
    rows = [line for line in flex.splitlines() if line.startswith("2020-06-01 ")]
    assert len(rows) == 16 and all(row.split()[3] == "30.0" for row in rows)  # the cap


def test_every_view_as_json(viewer: FleetClient) -> None:
    jobs = json.loads(as_json(viewer.list_jobs()))
    assert jobs[0]["job_id"] == "embed-1" and jobs[0]["deadline"].endswith("+00:00")
    status = json.loads(as_json(viewer.fleet_status()))
    assert status["sites"][1]["site_id"] == "london-depot"
    assert status["plan"]["kpis"]["emissions_kg"] > 0
    plan = json.loads(as_json(viewer.plan(vehicle_id="car-a")))
    assert plan["scope"] == "vehicle car-a" and plan["slots"][0]["grid_import_kw"] is None
    flex = json.loads(as_json(viewer.flexibility()))
    assert len(flex["slots"]) == 16
