"""Fuzzing the scenario loader and `idlefleet plan`: a mutated scenario-v1 document either loads
or raises `ScenarioError` naming a field path that exists in the document; never KeyError,
TypeError, OverflowError, RecursionError or any other exception. The CLI exits 2 on every
document the loader refuses, names the path and writes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from idlefleet.cli import main
from optimizer import Scenario, ScenarioError, load_scenario, scenario_to_dict
from optimizer.loader import json_path
from tests.optimizer.factories import car, tiny, ts

GOLDEN = Path(__file__).parent / "golden" / "caps-and-prices.scenario.json"
Doc = dict[str, Any]
PathParts = tuple[str | int, ...]


def golden() -> Doc:
    """Two regions with prices, three sites with PV, DR caps on a site and a region, jobs with
    residency: every section of the contract."""
    doc: Doc = json.loads(GOLDEN.read_text())
    return doc


def small() -> Doc:
    """One car and a job over three hourly slots: cheap to plan."""
    job = {"id": "j", "shards": 2, "value_per_shard": 1.0, "release": ts(0), "deadline": ts(3)}
    event_ = {"id": "e", "site": "S", "start": ts(1), "end": ts(2), "max_import_kw": 5.0}
    return tiny([300.0, 100.0, 200.0], vehicles=[car("a")], jobs=[job], dr_events=[event_])


# --- the property -----------------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _path_exists(doc: Any, path: str) -> bool:
    """True when every part of `path` but the last is in `doc`, and the last fits its parent
    (an existing key or index, or a key missing from an object: "is required")."""
    if path == "(document)":
        return True
    tokens: list[str | int] = [
        int(index) if index else key for key, index in _PATH_TOKEN.findall(path)
    ]
    if not tokens or json_path(tokens) != path:  # not a path, or an ambiguous one
        return False
    node = doc
    for token in tokens[:-1]:
        try:
            node = node[token]
        except (KeyError, IndexError, TypeError):
            return False
    last = tokens[-1]
    if isinstance(last, int):
        return isinstance(node, list) and last < len(node)
    return isinstance(node, dict)


def loaded_or_refused(doc: Doc) -> Scenario | ScenarioError:
    """`load_scenario`'s outcome, checked: a scenario that round-trips, or a ScenarioError that
    starts with a path of `doc`. Any other exception propagates and fails the test."""
    try:
        scenario = load_scenario(doc)
    except ScenarioError as refused:
        assert refused.path, f"no field path in {refused}"
        assert str(refused).startswith(f"{refused.path}: ") and refused.problem.strip()
        assert _path_exists(doc, refused.path), f"{refused.path!r} is not in the document"
        return refused
    assert load_scenario(scenario_to_dict(scenario)) == scenario
    return scenario


# --- mutations --------------------------------------------------------------------------------


def nested_list(depth: int) -> list[Any]:
    """`[[[...]]]` `depth` deep, built without recursion."""
    root: list[Any] = []
    node = root
    for _ in range(depth - 1):
        child: list[Any] = []
        node.append(child)
        node = child
    return root


@dataclass(frozen=True)
class Deep:
    """Stands for `nested_list(depth)` until the document is loaded, so that hypothesis can
    print an example and mutations need not walk it."""

    depth: int


def expanded(node: Any) -> Any:
    """`node` with every Deep made a real nested list."""
    if isinstance(node, Deep):
        return nested_list(node.depth)
    if isinstance(node, dict):
        return {key: expanded(value) for key, value in node.items()}
    if isinstance(node, list):
        return [expanded(value) for value in node]
    return node


timestamps = st.sampled_from(
    [
        "2020-06-01T00:00:00",  # no zone
        "2020-06-01 00:00Z",
        "2020-06-01T00:10:00Z",  # off the slot grid
        "2020-06-01T00:00:00+14:00",
        "2020-06-01T00:00:00+24:00",
        "2020-13-01T00:00:00Z",
        "2020-02-30T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:00:00-01:00",  # after year 9999 in UTC
        "9999-12-31T23:00:00Z",  # a horizon that would end after 9999
        "0001-01-01T00:00:00Z",
        "2019-06-01T00:00:00Z",
        "2021-06-01T00:00:00Z",
    ]
)
numbers = st.one_of(
    st.sampled_from([-1, -1e-9, 0, 0.5, 1, 7.5, 1e308, -1e308, 10**20, 10**400, -(10**400)]),
    st.floats(),  # NaN and ±Infinity included
    st.integers(),
)
wrong_types = st.sampled_from(["null", "[]", "{}", "[1, 2]", '{"a": 1}', '"12.5"', "true"]).map(
    json.loads
)  # parsed per draw: no two examples share a mutable value
strings = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["S", "R", "R0", "R1", "site-0", "site-2", "car-000", "job-0", ""]),
    st.builds(lambda n: "x" * n, st.sampled_from([1_000, 100_000])),
)
values = st.one_of(
    timestamps,
    numbers,
    wrong_types,
    strings,
    st.lists(numbers, max_size=60),
    st.builds(Deep, st.sampled_from([10, 5_000, 50_000])),
)
field_names = st.sampled_from(
    ["id", "site", "region", "start", "end", "slots", "shards", "sites", "pv_kw", "colour"]
)


def _paths(node: Any, prefix: PathParts = ()) -> list[PathParts]:
    out: list[PathParts] = []
    items: list[tuple[str | int, Any]] = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list) and len(node) < 200:
        items = list(enumerate(node))
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


def _at(doc: Any, path: PathParts) -> Any:
    for part in path:
        doc = doc[part]
    return doc


@st.composite
def mutated(draw: st.DrawFn, make: Any) -> Doc:
    """A document with one to four changes: a value replaced (by a nasty one or by another
    field's), a field dropped or added, a list item duplicated or dropped."""
    doc: Doc = make()
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _at(doc, path[:-1])
        key = path[-1]
        action = draw(st.sampled_from(["set", "set", "swap", "drop", "add", "dup", "drop"]))
        if action == "set":
            parent[key] = draw(values)
        elif action == "swap":
            parent[key] = copy.deepcopy(_at(doc, draw(st.sampled_from(paths))))
        elif action == "drop":
            del parent[key]
        elif action == "add" and isinstance(_at(doc, path), dict):
            _at(doc, path)[draw(field_names)] = draw(values)
        elif action == "dup" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    return doc


# --- load_scenario ----------------------------------------------------------------------------


def _with(path: PathParts, value: Any) -> Doc:
    doc = small()
    _at(doc, path[:-1])[path[-1]] = value
    return doc


@settings(max_examples=200, deadline=None)
@given(st.one_of(mutated(golden), mutated(small)))
@example(_with(("horizon", "start"), "0001-01-01T00:00:00+01:00"))
@example(_with(("horizon", "start"), "9999-12-31T23:00:00Z"))
@example(_with(("vehicles", 0, "arrival"), "9999-12-31T23:00:00-01:00"))
@example(_with(("vehicles", 0, "battery_kwh"), 10**400))
@example(_with(("regions", 0, "intensity_g_per_kwh"), [1.0, 10**400, 1.0]))
@example(_with(("jobs", 0, "shards"), 10**400))
@example(_with(("vehicles", 0, "site"), Deep(50_000)))
def test_a_mutated_scenario_loads_or_is_refused_naming_a_field(doc: Doc) -> None:
    outcome = loaded_or_refused(expanded(doc))
    event("refused" if isinstance(outcome, ScenarioError) else "loaded")


@pytest.mark.parametrize(
    ("path", "value", "named", "words"),
    [
        (("horizon", "start"), "0001-01-01T00:00:00+01:00", "horizon.start", "years 1 to 9999"),
        (("vehicles", 0, "departure"), "9999-12-31T23:00:00-01:00", "vehicles[0].departure", ""),
        (("horizon", "start"), "9999-12-31T23:00:00Z", "horizon.slots", "after the year 9999"),
        (("vehicles", 0, "battery_kwh"), 10**400, "vehicles[0].battery_kwh", "finite"),
        (("objective", "carbon_price_per_tonne"), -(10**400), "objective.carbon_price", ""),
        (("sites", 0, "pv_kw"), [0.0, 10**400, 0.0], "sites[0].pv_kw[1]", "float range"),
        (("vehicles", 0, "site"), nested_list(50_000), "(document)", "nested too deeply"),
    ],
    ids=["year-0", "year-10000", "horizon-end", "huge-int", "huge-negative", "huge-item", "deep"],
)
def test_what_the_fuzzer_found_is_refused_naming_the_field(
    path: PathParts, value: Any, named: str, words: str
) -> None:
    """Each of these raised OverflowError or RecursionError before."""
    refused = loaded_or_refused(_with(path, value))
    assert isinstance(refused, ScenarioError)
    assert str(refused).startswith(named) and words in refused.problem


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        mutated(small).map(lambda doc: json.dumps(doc, allow_nan=True, default=repr)),
        st.text(max_size=200).map(lambda text: "{" + text),
        st.builds(lambda n, c: c * n, st.sampled_from([1_000, 100_000]), st.sampled_from("[{")),
        st.builds(lambda n: '{"scenario_version": ' + "9" * n + "}", st.just(5_000)),
        st.builds(lambda n: '{"a":' * n + "1" + "}" * n, st.sampled_from([900, 100_000])),
    )
)
def test_scenario_text_loads_or_is_refused_with_a_reason(text: str) -> None:
    try:
        load_scenario(text)
    except ScenarioError as refused:
        assert str(refused).strip()


# --- idlefleet plan ---------------------------------------------------------------------------


def plan_cli(doc_text: str) -> tuple[int, str, bool]:
    """Run `idlefleet plan` in process on `doc_text`: exit code, stderr, whether it wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        scenario, out = Path(tmp) / "scenario.json", Path(tmp) / "plan.json"
        scenario.write_text(doc_text, encoding="utf-8", errors="surrogatepass")
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = main(["plan", str(scenario), "--strategy", "immediate", "-o", str(out)])
        return code, stderr.getvalue(), out.exists()


@settings(max_examples=25, deadline=None)
@given(mutated(small).filter(lambda doc: "Deep(" not in repr(doc)))
@example(_with(("horizon", "start"), "0001-01-01T00:00:00+01:00"))
@example(_with(("vehicles", 0, "soc_kwh"), 10**400))
def test_plan_exits_2_naming_the_field_and_writes_nothing_on_a_bad_scenario(doc: Doc) -> None:
    text = json.dumps(doc, allow_nan=True)
    try:
        load_scenario(doc)
    except ScenarioError as refused:
        code, stderr, wrote = plan_cli(text)
        assert (code, wrote) == (2, False), stderr
        assert refused.path in stderr
        return
    code, stderr, wrote = plan_cli(text)
    assert code in (0, 1) and wrote, stderr


@pytest.mark.parametrize(
    "text",
    ["", "[]", "{", '{"a":' * 100_000, '{"scenario_version": ' + "9" * 5_000 + "}", "\udcff"],
)
def test_plan_exits_2_on_unparsable_text(text: str) -> None:
    code, stderr, wrote = plan_cli(text)
    assert (code, wrote) == (2, False)
    assert stderr.startswith("idlefleet plan: ") and "Traceback" not in stderr


def test_plan_exits_2_on_a_missing_file_or_a_directory(tmp_path: Path) -> None:
    for where in (tmp_path / "missing.json", tmp_path):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            assert main(["plan", str(where), "--strategy", "immediate"]) == 2
        assert str(where) in stderr.getvalue()


def test_the_path_check_can_fail() -> None:
    """The property's path check refuses paths that are not in the document."""
    doc = small()
    assert _path_exists(doc, "vehicles[0].soc_kwh") and _path_exists(doc, "horizon.nothing")
    assert not _path_exists(doc, "vehicles[5].soc_kwh")
    assert not _path_exists(doc, "nowhere.slots")
    assert not _path_exists(doc, "")
    assert sys.getrecursionlimit() < 50_000  # the nested examples really are too deep
