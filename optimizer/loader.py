"""Read and write scenario documents: JSON Schema validation, then semantic consistency checks.

Every rejection is a :class:`ScenarioError` whose message starts with the JSON path of the field,
e.g. ``vehicles[3].soc_kwh: must be <= battery_kwh (75.0), got 80.0``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from optimizer.errors import ScenarioError
from optimizer.problem import DrEvent, Horizon, Job, Region, Scenario, Site, Vehicle
from optimizer.schemas import schema_text

PathPart = str | int
_FLOAT_MAX = sys.float_info.max


def json_path(parts: Iterable[PathPart]) -> str:
    """Format ``["vehicles", 3, "soc_kwh"]`` as ``vehicles[3].soc_kwh``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in ``optimizer/schemas`` (e.g. ``scenario-v1``)."""
    schema: dict[str, Any] = json.loads(schema_text(f"{name}.schema.json"))
    return schema


def _read_document(data: Mapping[str, Any] | str | Path) -> Any:
    if isinstance(data, Mapping):
        return data
    if isinstance(data, str) and data.lstrip().startswith("{"):
        text, source = data, "scenario text"
    else:
        path = Path(data)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte, undecodable bytes
            raise ScenarioError("", f"cannot read scenario file {path}: {exc}") from exc
        source = str(path)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # also an integer of >4300 digits, deep nesting
        raise ScenarioError("", f"{source} is not valid JSON: {exc}") from exc


def _non_finite(node: Any, parts: list[PathPart]) -> Iterator[list[PathPart]]:
    """Paths of NaN, infinities and integers too large for a float (OverflowError later)."""
    too_big = isinstance(node, int) and not isinstance(node, bool) and abs(node) > _FLOAT_MAX
    if too_big or (isinstance(node, float) and not math.isfinite(node)):
        yield parts
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _non_finite(value, [*parts, str(key)])
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from _non_finite(value, [*parts, index])


def _version(doc: Any) -> int:
    """The document's contract version: 1 for a version-1 document, else 2 (which the schema of
    version 2 then checks, naming ``scenario_version`` if it is neither)."""
    return 1 if isinstance(doc, Mapping) and doc.get("scenario_version") == 1 else 2


def validate_against_schema(doc: Any, schema_name: str | None = None) -> None:
    """Raise :class:`ScenarioError` naming the field if ``doc`` breaks the JSON Schema."""
    if schema_name is None:
        schema_name = f"scenario-v{_version(doc)}"
    try:
        for bad in _non_finite(doc, []):
            raise ScenarioError(
                json_path(bad), "must be a finite number, got NaN, infinity or beyond float range"
            )
        validator = jsonschema.Draft202012Validator(load_schema(schema_name))
        error = best_match(validator.iter_errors(doc))
    except RecursionError as exc:
        raise ScenarioError("(document)", "nested too deeply") from exc
    if error is None:
        return
    parts: list[PathPart] = list(error.absolute_path)
    message = error.message
    timestamp_pattern = (
        load_schema(schema_name).get("$defs", {}).get("timestamp", {}).get("pattern")
    )
    if error.validator == "pattern" and error.validator_value == timestamp_pattern:
        message = (
            f"must be an RFC 3339 timestamp with a UTC offset (Z or +hh:mm), got {error.instance!r}"
        )
    if error.validator == "oneOf" and parts and parts[0] == "dr_events":
        message = "must name exactly one of site and region"
    if error.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", message)
        if missing:
            parts.append(missing.group(1))
            message = "is required"
    raise ScenarioError(json_path(parts) or "(document)", message)


def _timestamp(text: str, parts: list[PathPart]) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ScenarioError(json_path(parts), f"not an RFC 3339 timestamp: {text!r}") from exc
    if when.tzinfo is None:
        raise ScenarioError(json_path(parts), f"timestamp must carry a UTC offset, got {text!r}")
    try:
        return when.astimezone(UTC)
    except OverflowError as exc:
        raise ScenarioError(
            json_path(parts), f"outside the years 1 to 9999 in UTC, got {text!r}"
        ) from exc


def _unique_ids(items: Sequence[Mapping[str, Any]], section: str) -> None:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item["id"] in seen:
            raise ScenarioError(
                f"{section}[{index}].id",
                f"duplicate id {item['id']!r} (also {section}[{seen[item['id']]}])",
            )
        seen[item["id"]] = index


def _series(values: Sequence[float] | None, slots: int, parts: list[PathPart]) -> tuple[float, ...]:
    if values is None:
        return (0.0,) * slots
    if len(values) != slots:
        raise ScenarioError(
            json_path(parts), f"must have one value per slot ({slots}), got {len(values)}"
        )
    return tuple(float(v) for v in values)


def _horizon(doc: Mapping[str, Any]) -> Horizon:
    raw = doc["horizon"]
    start = _timestamp(raw["start"], ["horizon", "start"])
    slot_minutes = int(raw["slot_minutes"])
    since_epoch = start - datetime(1970, 1, 1, tzinfo=UTC)
    if since_epoch % timedelta(minutes=slot_minutes) != timedelta(0):
        raise ScenarioError(
            "horizon.start",
            f"must lie on a {slot_minutes}-minute slot boundary, got {raw['start']}",
        )
    slots = int(raw["slots"])
    try:
        start + slots * timedelta(minutes=slot_minutes)
    except OverflowError as exc:
        raise ScenarioError("horizon.slots", "the horizon would end after the year 9999") from exc
    return Horizon(start=start, slot_minutes=slot_minutes, slots=slots)


def _vehicle(raw: Mapping[str, Any], index: int, sites: Mapping[str, Site]) -> Vehicle:
    def where(name: str) -> str:
        return f"vehicles[{index}].{name}"

    if raw["site"] not in sites:
        raise ScenarioError(where("site"), f"unknown site {raw['site']!r}")
    arrival = _timestamp(raw["arrival"], ["vehicles", index, "arrival"])
    departure = _timestamp(raw["departure"], ["vehicles", index, "departure"])
    if departure <= arrival:
        raise ScenarioError(
            where("departure"), f"must be after arrival ({raw['arrival']}), got {raw['departure']}"
        )
    battery = float(raw["battery_kwh"])
    for name in ("soc_kwh", "reserve_kwh"):
        if name in raw and float(raw[name]) > battery:
            raise ScenarioError(
                where(name), f"must be <= battery_kwh ({battery}), got {float(raw[name])}"
            )
    target = raw.get("target_kwh")
    return Vehicle(
        id=raw["id"],
        site=raw["site"],
        arrival=arrival,
        departure=departure,
        battery_kwh=battery,
        soc_kwh=float(raw["soc_kwh"]),
        reserve_kwh=float(raw.get("reserve_kwh", 0.0)),
        target_kwh=None if target is None else float(target),
        charger_kw=float(raw.get("charger_kw", 0.0)),
        charge_efficiency_frac=float(raw.get("charge_efficiency_frac", 0.92)),
        compute_kw=float(raw["compute_kw"]),
        shards_per_slot=int(raw.get("shards_per_slot", 1)),
        wear_cost_per_kwh=float(raw.get("wear_cost_per_kwh", 0.0)),
        participating=bool(raw.get("participating", True)),
    )


def _job(raw: Mapping[str, Any], index: int, sites: Mapping[str, Site]) -> Job:
    release = (
        None if "release" not in raw else _timestamp(raw["release"], ["jobs", index, "release"])
    )
    deadline = (
        None if "deadline" not in raw else _timestamp(raw["deadline"], ["jobs", index, "deadline"])
    )
    if release is not None and deadline is not None and deadline <= release:
        raise ScenarioError(
            f"jobs[{index}].deadline",
            f"must be after release ({raw['release']}), got {raw['deadline']}",
        )
    job_sites = raw.get("sites")
    if job_sites is not None:
        for k, site_id in enumerate(job_sites):
            if site_id not in sites:
                raise ScenarioError(f"jobs[{index}].sites[{k}]", f"unknown site {site_id!r}")
    return Job(
        id=raw["id"],
        shards=int(raw["shards"]),
        replicas=int(raw.get("replicas", 1)),
        value_per_shard=float(raw["value_per_shard"]),
        release=release,
        deadline=deadline,
        sites=None if job_sites is None else tuple(job_sites),
    )


def _dr_event(
    raw: Mapping[str, Any], index: int, sites: Mapping[str, Site], regions: Mapping[str, Region]
) -> DrEvent:
    if "site" in raw and raw["site"] not in sites:
        raise ScenarioError(f"dr_events[{index}].site", f"unknown site {raw['site']!r}")
    if "region" in raw and raw["region"] not in regions:
        raise ScenarioError(f"dr_events[{index}].region", f"unknown region {raw['region']!r}")
    start = _timestamp(raw["start"], ["dr_events", index, "start"])
    end = _timestamp(raw["end"], ["dr_events", index, "end"])
    if end <= start:
        raise ScenarioError(
            f"dr_events[{index}].end", f"must be after start ({raw['start']}), got {raw['end']}"
        )
    return DrEvent(
        id=raw["id"],
        site=raw.get("site"),
        region=raw.get("region"),
        start=start,
        end=end,
        max_import_kw=float(raw["max_import_kw"]),
    )


def scenario_from_dict(doc: Mapping[str, Any]) -> Scenario:
    """Build a :class:`Scenario` from a schema-valid document, checking its consistency."""
    horizon = _horizon(doc)
    n = horizon.slots
    for section in ("regions", "sites", "vehicles", "jobs", "dr_events"):
        _unique_ids(doc.get(section, []), section)

    regions: dict[str, Region] = {}
    for i, raw in enumerate(doc["regions"]):
        regions[raw["id"]] = Region(
            id=raw["id"],
            intensity_g_per_kwh=_series(
                raw["intensity_g_per_kwh"], n, ["regions", i, "intensity_g_per_kwh"]
            ),
            price_per_kwh=_series(raw.get("price_per_kwh"), n, ["regions", i, "price_per_kwh"]),
        )
    sites: dict[str, Site] = {}
    for i, raw in enumerate(doc["sites"]):
        if raw["region"] not in regions:
            raise ScenarioError(f"sites[{i}].region", f"unknown region {raw['region']!r}")
        sites[raw["id"]] = Site(
            id=raw["id"],
            region=raw["region"],
            grid_limit_kw=float(raw["grid_limit_kw"]),
            pv_kw=_series(raw.get("pv_kw"), n, ["sites", i, "pv_kw"]),
        )
    vehicles = tuple(_vehicle(raw, i, sites) for i, raw in enumerate(doc["vehicles"]))
    jobs = tuple(_job(raw, i, sites) for i, raw in enumerate(doc.get("jobs", [])))
    events = tuple(
        _dr_event(raw, i, sites, regions) for i, raw in enumerate(doc.get("dr_events", []))
    )
    return Scenario(
        horizon=horizon,
        carbon_price_per_tonne=float(doc["objective"]["carbon_price_per_tonne"]),
        regions=tuple(regions.values()),
        sites=tuple(sites.values()),
        vehicles=vehicles,
        jobs=jobs,
        dr_events=events,
    )


def load_scenario(data: Mapping[str, Any] | str | Path) -> Scenario:
    """Load and validate a scenario document, version 2 or 1 (read as version 2).

    ``data`` is a parsed document, JSON text (a string starting with ``{``) or a file path.
    Raises :class:`ScenarioError` naming the offending field as a JSON path.
    """
    doc = _read_document(data)
    validate_against_schema(doc)
    return scenario_from_dict(doc)


def format_timestamp(when: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix."""
    text = when.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario document (version 2) for ``scenario``; ``load_scenario`` gives it back.

    The one writer of scenario documents: callers build typed objects."""
    h = scenario.horizon
    doc: dict[str, Any] = {
        "scenario_version": 2,
        "horizon": {
            "start": format_timestamp(h.start),
            "slot_minutes": h.slot_minutes,
            "slots": h.slots,
        },
        "objective": {"carbon_price_per_tonne": scenario.carbon_price_per_tonne},
        "regions": [
            {
                "id": r.id,
                "intensity_g_per_kwh": list(r.intensity_g_per_kwh),
                "price_per_kwh": list(r.price_per_kwh),
            }
            for r in scenario.regions
        ],
        "sites": [
            {
                "id": s.id,
                "region": s.region,
                "grid_limit_kw": s.grid_limit_kw,
                "pv_kw": list(s.pv_kw),
            }
            for s in scenario.sites
        ],
        "vehicles": [],
        "jobs": [],
        "dr_events": [],
    }
    for v in scenario.vehicles:
        vehicle: dict[str, Any] = {
            "id": v.id,
            "site": v.site,
            "arrival": format_timestamp(v.arrival),
            "departure": format_timestamp(v.departure),
            "battery_kwh": v.battery_kwh,
            "soc_kwh": v.soc_kwh,
            "reserve_kwh": v.reserve_kwh,
            "charger_kw": v.charger_kw,
            "charge_efficiency_frac": v.charge_efficiency_frac,
            "compute_kw": v.compute_kw,
            "shards_per_slot": v.shards_per_slot,
            "wear_cost_per_kwh": v.wear_cost_per_kwh,
            "participating": v.participating,
        }
        if v.target_kwh is not None:
            vehicle["target_kwh"] = v.target_kwh
        doc["vehicles"].append(vehicle)
    for j in scenario.jobs:
        job: dict[str, Any] = {
            "id": j.id,
            "shards": j.shards,
            "replicas": j.replicas,
            "value_per_shard": j.value_per_shard,
        }
        if j.release is not None:
            job["release"] = format_timestamp(j.release)
        if j.deadline is not None:
            job["deadline"] = format_timestamp(j.deadline)
        if j.sites is not None:
            job["sites"] = list(j.sites)
        doc["jobs"].append(job)
    for e in scenario.dr_events:
        event: dict[str, Any] = {"id": e.id}
        if e.site is not None:
            event["site"] = e.site
        if e.region is not None:
            event["region"] = e.region
        event.update(
            start=format_timestamp(e.start),
            end=format_timestamp(e.end),
            max_import_kw=e.max_import_kw,
        )
        doc["dr_events"].append(event)
    return doc
