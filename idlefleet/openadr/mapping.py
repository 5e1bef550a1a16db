"""OpenADR events to idlefleet grid-import caps, through one configurable mapping.

An event's targets (resource, group or VEN ids) name sites or regions through `DrMapping`;
each interval of a load signal becomes one cap on grid import over that interval:
- `LOAD_DISPATCH` / `LOAD_CONTROL` with a kW payload (`setpoint`, `x-loadControlCapacity`):
  the payload is the most the target may import [kW];
- `SIMPLE` levels 0-3: a configurable fraction of the target's grid limit (level 0: no cap).
`ELECTRICITY_PRICE` carries no cap; it is returned as a price series for the planner.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idlefleet.sites import SiteConfig
from streams.messages import DemandResponseEvent

LOAD_SIGNALS = ("LOAD_DISPATCH", "LOAD_CONTROL")
SIMPLE = "SIMPLE"
PRICE_SIGNALS = ("ELECTRICITY_PRICE",)


class DrMappingError(ValueError):
    """An event or mapping that cannot be turned into caps; the message says why."""


@dataclass(frozen=True)
class Target:
    """A site or a region (exactly one)."""

    site_id: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        if (self.site_id is None) == (self.region is None):
            raise DrMappingError("a target names exactly one of site and region")


@dataclass(frozen=True)
class DrMapping:
    """Which OpenADR target ids mean which sites or regions, and what SIMPLE levels mean."""

    targets: Mapping[str, Target]
    default: Sequence[Target]
    simple_level_frac: Mapping[int, float] = field(
        default_factory=lambda: {0: 1.0, 1: 0.75, 2: 0.5, 3: 0.25}
    )

    @classmethod
    def for_sites(cls, sites: Sequence[SiteConfig]) -> DrMapping:
        """Each site's id targets that site; an untargeted event caps every site."""
        return cls(
            targets={site.site_id: Target(site_id=site.site_id) for site in sites},
            default=tuple(Target(site_id=site.site_id) for site in sites),
        )

    @classmethod
    def from_file(cls, path: Path) -> DrMapping:
        """JSON: {"targets": {"ID": {"site": S} | {"region": R}}, "default": [...],
        "simple_level_frac": {"1": 0.75, ...}}."""
        try:
            doc = json.loads(path.read_text())
            targets = {key: _target(value) for key, value in doc["targets"].items()}
            default = tuple(_target(value) for value in doc.get("default", []))
            levels = {int(k): float(v) for k, v in doc.get("simple_level_frac", {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DrMappingError(f"{path}: {exc}") from exc
        return cls(targets, default, levels or cls.for_sites([]).simple_level_frac)

    def resolve(self, event_targets: Sequence[Mapping[str, Any]]) -> list[Target]:
        """The sites and regions an event's targets name (its VEN only: the default)."""
        named = [
            value
            for target in event_targets
            for key in ("resource_id", "group_id", "party_id")
            if (value := target.get(key)) is not None
        ]
        if not named:
            return list(self.default)
        unknown = [name for name in named if name not in self.targets]
        if unknown:
            raise DrMappingError(f"unknown event targets: {', '.join(sorted(unknown))}")
        return list(dict.fromkeys(self.targets[name] for name in named))


def _target(value: Mapping[str, str]) -> Target:
    return Target(site_id=value.get("site"), region=value.get("region"))


@dataclass(frozen=True)
class PricePoint:
    start: datetime
    end: datetime
    price_per_kwh: float


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise DrMappingError(f"naive timestamp in event: {moment.isoformat()}")
    return moment.astimezone(UTC)


def cap_id(event_id: str, signal_index: int, interval_index: int, target: Target) -> str:
    where = target.site_id or target.region
    return f"{event_id}:{signal_index}:{interval_index}:{where}"


def event_id_of(cap: DemandResponseEvent) -> str | None:
    """The OpenADR event a cap was made from (`cap_id`); None for a cap made elsewhere."""
    parts = cap.event_id.rsplit(":", 3)
    if len(parts) != 4:
        return None
    event_id, signal_index, interval_index, where = parts
    if not (signal_index.isdigit() and interval_index.isdigit()):
        return None
    return event_id if where == (cap.site_id or cap.region) else None


def event_caps(
    event: Mapping[str, Any], mapping: DrMapping, sites: Sequence[SiteConfig]
) -> list[DemandResponseEvent]:
    """The grid-import caps an OpenADR event asks for (empty for price-only events)."""
    descriptor = event["event_descriptor"]
    event_id = str(descriptor["event_id"])
    targets = mapping.resolve(event.get("targets") or [])
    limits = _grid_limits_kw(sites)
    caps = []
    for s_index, signal in enumerate(event.get("event_signals", [])):
        name = signal["signal_name"]
        if name in PRICE_SIGNALS:
            continue
        if name not in (*LOAD_SIGNALS, SIMPLE):
            raise DrMappingError(f"event {event_id}: unsupported signal {name}")
        for i_index, interval in enumerate(signal["intervals"]):
            start = _utc(interval["dtstart"])
            end = start + interval["duration"]
            payload = float(interval["signal_payload"])
            for target in targets:
                limit_kw = limits.get(target.site_id or f"region:{target.region}")
                if limit_kw is None:
                    raise DrMappingError(f"event {event_id}: target {target} is not a known site")
                if name == SIMPLE:
                    level = int(payload)
                    if level not in mapping.simple_level_frac:
                        raise DrMappingError(f"event {event_id}: SIMPLE level {level} unknown")
                    max_import_kw = mapping.simple_level_frac[level] * limit_kw
                else:
                    if payload < 0:
                        raise DrMappingError(f"event {event_id}: negative kW target {payload}")
                    max_import_kw = payload
                caps.append(
                    DemandResponseEvent(
                        event_id=cap_id(event_id, s_index, i_index, target),
                        site_id=target.site_id,
                        region=target.region,
                        start=start,
                        end=end,
                        max_import_kw=max_import_kw,
                    )
                )
    return caps


def event_prices(event: Mapping[str, Any]) -> list[PricePoint]:
    """The energy prices an ELECTRICITY_PRICE signal announces [currency/kWh]."""
    points = []
    for signal in event.get("event_signals", []):
        if signal["signal_name"] in PRICE_SIGNALS:
            for interval in signal["intervals"]:
                start = _utc(interval["dtstart"])
                points.append(
                    PricePoint(
                        start, start + interval["duration"], float(interval["signal_payload"])
                    )
                )
    return points


def _grid_limits_kw(sites: Sequence[SiteConfig]) -> dict[str, float]:
    limits = {site.site_id: site.grid_limit_kw for site in sites}
    for site in sites:
        key = f"region:{site.region}"
        limits[key] = limits.get(key, 0.0) + site.grid_limit_kw
    return limits
