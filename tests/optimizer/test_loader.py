"""Loading scenarios: schema and consistency rejections name the field; round trips."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from optimizer import ScenarioError, load_scenario, scenario_to_dict
from optimizer.loader import load_schema
from tests.optimizer.factories import car, fleet, tiny, ts

Doc = dict[str, Any]


def base() -> Doc:
    event = {"id": "evt", "site": "S", "start": ts(1), "end": ts(2), "max_import_kw": 5.0}
    job = {"id": "j", "shards": 3, "value_per_shard": 1.0, "release": ts(0), "deadline": ts(3)}
    return tiny(
        [100.0, 200.0, 300.0, 400.0],
        vehicles=[car("a"), car("b", soc_kwh=30.0, target_kwh=40.0)],
        jobs=[job],
        dr_events=[event],
        pv_kw=[0.0, 1.0, 2.0, 0.0],
        price=[0.1, 0.2, 0.3, 0.4],
    )


def setter(path: str, value: Any) -> Callable[[Doc], None]:
    """Set ``value`` at a dotted path like ``vehicles.1.soc_kwh`` (``DELETE`` removes it)."""

    def apply(doc: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        key: Any = int(last) if last.isdigit() else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value

    return apply


DELETE = object()

CASES: list[tuple[str, Callable[[Doc], None], str, str]] = [
    ("version", setter("scenario_version", 3), "scenario_version", "2 was expected"),
    ("missing horizon", setter("horizon", DELETE), "horizon", "required"),
    ("missing slots", setter("horizon.slots", DELETE), "horizon.slots", "required"),
    ("zero slots", setter("horizon.slots", 0), "horizon.slots", "minimum"),
    ("slot minutes float", setter("horizon.slot_minutes", 7.5), "horizon.slot_minutes", "integer"),
    ("naive start", setter("horizon.start", "2020-06-01T00:00:00"), "horizon.start", "offset"),
    ("start off grid", setter("horizon.start", "2020-06-01T00:10:00Z"), "horizon.start", "slot"),
    ("bad date", setter("horizon.start", "2020-13-01T00:00:00Z"), "horizon.start", "RFC 3339"),
    (
        "negative carbon price",
        setter("objective.carbon_price_per_tonne", -1),
        "objective.carbon_price_per_tonne",
        "minimum",
    ),
    (
        "short intensity",
        setter("regions.0.intensity_g_per_kwh", [1.0, 2.0]),
        "regions[0].intensity_g_per_kwh",
        "one value per slot (4), got 2",
    ),
    (
        "negative intensity",
        setter("regions.0.intensity_g_per_kwh", [1.0, -2.0, 1.0, 1.0]),
        "regions[0].intensity_g_per_kwh[1]",
        "minimum",
    ),
    (
        "nan intensity",
        setter("regions.0.intensity_g_per_kwh", [1.0, math.nan, 1.0, 1.0]),
        "regions[0].intensity_g_per_kwh[1]",
        "finite",
    ),
    (
        "inf price",
        setter("regions.0.price_per_kwh", [1.0, 1.0, math.inf, 1.0]),
        "regions[0].price_per_kwh[2]",
        "finite",
    ),
    (
        "long price",
        setter("regions.0.price_per_kwh", [0.0] * 5),
        "regions[0].price_per_kwh",
        "one value per slot",
    ),
    ("pv length", setter("sites.0.pv_kw", [0.0] * 3), "sites[0].pv_kw", "one value per slot"),
    ("negative pv", setter("sites.0.pv_kw", [0, 0, -1, 0]), "sites[0].pv_kw[2]", "minimum"),
    ("unknown region", setter("sites.0.region", "XX"), "sites[0].region", "unknown region"),
    ("negative grid", setter("sites.0.grid_limit_kw", -5), "sites[0].grid_limit_kw", "minimum"),
    ("duplicate vehicle", setter("vehicles.1.id", "a"), "vehicles[1].id", "duplicate id 'a'"),
    ("unknown site", setter("vehicles.1.site", "nowhere"), "vehicles[1].site", "unknown site"),
    (
        "soc above battery",
        setter("vehicles.1.soc_kwh", 80.0),
        "vehicles[1].soc_kwh",
        "must be <= battery_kwh (50.0), got 80.0",
    ),
    (
        "reserve above battery",
        setter("vehicles.0.reserve_kwh", 60.0),
        "vehicles[0].reserve_kwh",
        "<= battery_kwh",
    ),
    ("negative soc", setter("vehicles.0.soc_kwh", -1.0), "vehicles[0].soc_kwh", "minimum"),
    ("zero battery", setter("vehicles.0.battery_kwh", 0.0), "vehicles[0].battery_kwh", "less than"),
    (
        "efficiency zero",
        setter("vehicles.0.charge_efficiency_frac", 0.0),
        "vehicles[0].charge_efficiency_frac",
        "",
    ),
    (
        "efficiency above one",
        setter("vehicles.0.charge_efficiency_frac", 1.2),
        "vehicles[0].charge_efficiency_frac",
        "maximum",
    ),
    ("missing compute", setter("vehicles.0.compute_kw", DELETE), "vehicles[0].compute_kw", ""),
    (
        "departure before arrival",
        setter("vehicles.1.departure", ts(-1)),
        "vehicles[1].departure",
        "must be after arrival",
    ),
    (
        "naive arrival",
        setter("vehicles.0.arrival", "2020-06-01T00:00:00"),
        "vehicles[0].arrival",
        "UTC offset",
    ),
    ("unknown field", setter("vehicles.0.colour", "red"), "vehicles[0]", "colour"),
    ("shards float", setter("jobs.0.shards", 1.5), "jobs[0].shards", "integer"),
    ("zero replicas", setter("jobs.0.replicas", 0), "jobs[0].replicas", "minimum"),
    ("negative value", setter("jobs.0.value_per_shard", -1), "jobs[0].value_per_shard", ""),
    ("deadline first", setter("jobs.0.deadline", ts(0)), "jobs[0].deadline", "after release"),
    ("job unknown site", setter("jobs.0.sites", ["S", "Z"]), "jobs[0].sites[1]", "unknown site"),
    (
        "duplicate job",
        setter("jobs", [{"id": "j", "shards": 1, "value_per_shard": 0}] * 2),
        "jobs[1].id",
        "duplicate",
    ),
    ("dr unknown site", setter("dr_events.0.site", "Z"), "dr_events[0].site", "unknown site"),
    ("dr end first", setter("dr_events.0.end", ts(0)), "dr_events[0].end", "after start"),
    ("dr negative cap", setter("dr_events.0.max_import_kw", -1), "dr_events[0].max_import_kw", ""),
    (
        "dr both targets",
        setter("dr_events.0.region", "R"),
        "dr_events[0]",
        "exactly one of site and region",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rejection_names_the_field(mutate: Callable[[Doc], None], path: str, words: str) -> None:
    doc = base()
    mutate(doc)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(doc)
    assert caught.value.path == path, str(caught.value)
    assert str(caught.value).startswith(f"{path}: ")
    assert words in str(caught.value)


def test_region_dr_event_with_unknown_region() -> None:
    doc = base()
    doc["dr_events"] = [
        {"id": "e", "region": "Q", "start": ts(0), "end": ts(1), "max_import_kw": 1.0}
    ]
    with pytest.raises(ScenarioError, match=r"^dr_events\[0\]\.region: unknown region 'Q'"):
        load_scenario(doc)


def test_defaults_and_utc() -> None:
    doc = base()
    doc["vehicles"][0]["arrival"] = "2020-06-01T02:00:00+02:00"
    scenario = load_scenario(doc)
    a = scenario.vehicle_by_id["a"]
    assert a.arrival.tzinfo is UTC and a.arrival.hour == 0
    assert a.reserve_kwh == 0 and a.target_kwh is None and a.wished_kwh == a.soc_kwh
    assert a.shards_per_slot == 1 and a.participating
    assert scenario.job_by_id["j"].replicas == 1
    assert scenario.horizon.dt_h == 1.0


def test_round_trip_through_dict_text_and_file(tmp_path: Path) -> None:
    scenario = load_scenario(fleet(8, 24, 2, seed=3))
    doc = scenario_to_dict(scenario)
    assert load_scenario(doc) == scenario
    assert load_scenario(json.dumps(doc)) == scenario
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(doc))
    assert load_scenario(path) == scenario
    assert load_scenario(str(path)) == scenario


def test_unreadable_inputs() -> None:
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario("{not json")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario("/nonexistent/scenario.json")


def test_schema_is_draft_2020_12() -> None:
    schema = load_schema("scenario-v1")
    assert schema["$schema"].endswith("2020-12/schema")
    assert copy.deepcopy(schema) == load_schema("scenario-v1")
