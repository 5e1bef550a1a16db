"""`idlefleet scenario generate` and the scenario builder it shares with the demo summary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from idlefleet.cli import main
from idlefleet.sim.catalog import demo_sites
from optimizer import load_scenario

ARGS = ["--cars", "60", "--sites", "4", "--jobs", "150", "--region", "FR", "--seed", "3"]


def generate(path: Path, *extra: str) -> int:
    return main(["scenario", "generate", *ARGS, "--date", "2020-06-10", "-o", str(path), *extra])


def test_the_same_arguments_give_the_same_scenario(tmp_path: Path) -> None:
    assert generate(tmp_path / "a.json") == 0
    assert generate(tmp_path / "b.json") == 0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert generate(tmp_path / "c.json", "--seed", "4") == 0
    assert (tmp_path / "c.json").read_bytes() != (tmp_path / "a.json").read_bytes()


def test_a_generated_scenario_loads_and_looks_like_a_day(tmp_path: Path) -> None:
    assert generate(tmp_path / "day.json") == 0
    scenario = load_scenario(tmp_path / "day.json")
    assert scenario.horizon.slots == 96 and scenario.horizon.slot_minutes == 15
    assert [r.id for r in scenario.regions] == ["FR"]
    assert 50 < max(scenario.regions[0].intensity_g_per_kwh) < 200  # French 2020 grid
    assert len(scenario.sites) == 4 and len(scenario.vehicles) == 60
    assert all(max(site.pv_kw) > 0 and site.pv_kw[0] == 0 for site in scenario.sites)
    assert all(len(scenario.window(v)) >= 2 for v in scenario.vehicles)
    jobs = scenario.jobs
    assert len(jobs) == 150
    assert all(len(scenario.job_slots(j)) >= 1 for j in jobs)
    replicas = Counter(j.replicas for j in jobs)
    assert replicas[1] > replicas[2] > 0
    restricted = [j for j in jobs if j.sites is not None]
    assert 0 < len(restricted) < len(jobs) / 2
    assert len({j.value_per_shard for j in jobs}) > 100


def test_slot_minutes(tmp_path: Path) -> None:
    assert generate(tmp_path / "hourly.json", "--slot-minutes", "60") == 0
    assert load_scenario(tmp_path / "hourly.json").horizon.slots == 24


@pytest.mark.parametrize(
    "bad",
    [
        ["--date", "2020-13-01"],
        ["--date", "2020-03-10"],  # outside the shipped June 2020 excerpt, no --shared-data
        ["--sites", "0"],
        ["--cars", "0"],
        ["--jobs", "-1"],
        ["--slot-minutes", "7"],
        ["--region", "XX"],
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(tmp_path: Path, bad: list[str]) -> None:
    out = tmp_path / "scenario.json"
    with pytest.raises(SystemExit) as raised:
        raise SystemExit(generate(out, *bad))
    assert raised.value.code == 2
    assert not out.exists()


def test_depots_of_one_region_for_any_count() -> None:
    sites = demo_sites(40, 4000, "GB")
    assert len({s.site_id for s in sites}) == 40
    assert {s.region for s in sites} == {"GB"}
    assert {s.site_id.split("-depot")[0] for s in sites} == {"london", "manchester"}
    assert len({(s.latitude_deg, s.longitude_deg) for s in sites}) == 16  # 8 districts each
    assert demo_sites(2, 20) == demo_sites(2, 20, None)  # the demo's catalog is unchanged
    with pytest.raises(ValueError, match="region"):
        demo_sites(3, 30, "US")
