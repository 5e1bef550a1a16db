"""Scenario documents for tests: a tiny builder, one car over three slots and a realistic
fleet generator."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2020, 6, 1, tzinfo=UTC)


def ts(slot: float, slot_minutes: int = 60, start: datetime = START) -> str:
    """Timestamp of (fractional) slot ``slot`` as RFC 3339 with ``Z``."""
    when = start + timedelta(minutes=slot * slot_minutes)
    return when.isoformat().replace("+00:00", "Z")


def tiny(
    intensity: list[float],
    *,
    vehicles: list[dict[str, Any]] | None = None,
    jobs: list[dict[str, Any]] | None = None,
    dr_events: list[dict[str, Any]] | None = None,
    grid_limit_kw: float = 1000.0,
    pv_kw: list[float] | None = None,
    price: list[float] | None = None,
    carbon_price_per_tonne: float = 100.0,
    extra_sites: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A one-region, one-site scenario of hourly slots; vehicles default to the whole horizon."""
    n = len(intensity)
    region: dict[str, Any] = {"id": "R", "intensity_g_per_kwh": intensity}
    if price is not None:
        region["price_per_kwh"] = price
    site: dict[str, Any] = {"id": "S", "region": "R", "grid_limit_kw": grid_limit_kw}
    if pv_kw is not None:
        site["pv_kw"] = pv_kw
    return {
        "scenario_version": 1,
        "horizon": {"start": ts(0), "slot_minutes": 60, "slots": n},
        "objective": {"carbon_price_per_tonne": carbon_price_per_tonne},
        "regions": [region],
        "sites": [site, *(extra_sites or [])],
        "vehicles": vehicles or [],
        "jobs": jobs or [],
        "dr_events": dr_events or [],
    }


def car(
    vid: str = "car",
    *,
    arrival: float = 0,
    departure: float = 1000,
    site: str = "S",
    **fields: Any,
) -> dict[str, Any]:
    """A vehicle dict; ``arrival``/``departure`` in hourly slots from START."""
    doc: dict[str, Any] = {
        "id": vid,
        "site": site,
        "arrival": ts(arrival),
        "departure": ts(departure),
        "battery_kwh": 50.0,
        "soc_kwh": 20.0,
        "charger_kw": 10.0,
        "charge_efficiency_frac": 1.0,
        "compute_kw": 1.0,
    }
    doc.update(fields)
    return doc


def one_car_three_slots(**vehicle: Any) -> dict[str, Any]:
    """One car owed 10 kWh (20 of 60 kWh, target 30, 11 kW charger, no compute) over three
    hourly slots at 400, 100 and 300 g/kWh, under a 50 kW grid limit: the cleanest slot is the
    second; `vehicle` changes the car."""
    values: dict[str, Any] = {
        "departure": 3,
        "battery_kwh": 60.0,
        "target_kwh": 30.0,
        "charger_kw": 11.0,
        "compute_kw": 0.0,
        **vehicle,
    }
    return tiny([400.0, 100.0, 300.0], vehicles=[car(**values)], grid_limit_kw=50.0)


def fleet(
    n_vehicles: int = 20,
    n_slots: int = 96,
    n_jobs: int = 3,
    *,
    n_sites: int = 3,
    seed: int = 0,
    slot_minutes: int = 15,
    with_dr: bool = True,
) -> dict[str, Any]:
    """A realistic depot day: evening arrivals, morning departures, PV, a DR event."""
    rng = random.Random(seed)
    hours = n_slots * slot_minutes / 60
    regions = []
    for r, base in enumerate((300.0, 120.0)):
        intensity = [
            base
            + 80 * math.sin(2 * math.pi * (k * slot_minutes / 60 - 6) / 24)
            + rng.uniform(-20, 20)
            for k in range(n_slots)
        ]
        price = [0.25 + 0.1 * math.sin(2 * math.pi * k / n_slots) for k in range(n_slots)]
        regions.append({"id": f"R{r}", "intensity_g_per_kwh": intensity, "price_per_kwh": price})
    sites = []
    for i in range(n_sites):
        pv = [
            max(0.0, 40 * math.sin(math.pi * (k * slot_minutes / 60 - 6) / 12))
            for k in range(n_slots)
        ]
        sites.append(
            {"id": f"site-{i}", "region": f"R{i % 2}", "grid_limit_kw": 60.0 + 20 * i, "pv_kw": pv}
        )
    vehicles = []
    for v in range(n_vehicles):
        arrival_h = rng.uniform(-4, hours * 0.6)
        stay_h = rng.uniform(4, 20)
        battery = rng.choice([40.0, 60.0, 75.0, 100.0])
        soc = rng.uniform(0.2, 0.8) * battery
        vehicles.append(
            {
                "id": f"car-{v:03d}",
                "site": f"site-{v % n_sites}",
                "arrival": ts(arrival_h * 60 / slot_minutes, slot_minutes),
                "departure": ts((arrival_h + stay_h) * 60 / slot_minutes, slot_minutes),
                "battery_kwh": battery,
                "soc_kwh": round(soc, 2),
                "reserve_kwh": round(0.2 * battery, 2),
                "target_kwh": round(rng.uniform(0.5, 0.9) * battery, 2),
                "charger_kw": rng.choice([7.4, 11.0, 22.0]),
                "charge_efficiency_frac": 0.92,
                "compute_kw": rng.choice([0.3, 0.5, 0.8]),
                "shards_per_slot": rng.choice([1, 1, 2]),
                "wear_cost_per_kwh": 0.02,
                "participating": rng.random() > 0.1,
            }
        )
    jobs = []
    for j in range(n_jobs):
        release = rng.uniform(0, hours * 0.3)
        jobs.append(
            {
                "id": f"job-{j}",
                "shards": rng.randint(20, 60),
                "replicas": rng.choice([1, 2]),
                "value_per_shard": rng.uniform(0.05, 0.5),
                "release": ts(release * 60 / slot_minutes, slot_minutes),
                "deadline": ts((release + hours * 0.6) * 60 / slot_minutes, slot_minutes),
                **({"sites": ["site-0", "site-1"]} if j == 0 and n_sites > 1 else {}),
            }
        )
    events = []
    if with_dr:
        events.append(
            {
                "id": "dr-site0",
                "site": "site-0",
                "start": ts(18 * 60 / slot_minutes, slot_minutes),
                "end": ts(20 * 60 / slot_minutes, slot_minutes),
                "max_import_kw": 40.0,
            }
        )
        events.append(
            {
                "id": "dr-R0",
                "region": "R0",
                "start": ts(7 * 60 / slot_minutes, slot_minutes),
                "end": ts(8 * 60 / slot_minutes, slot_minutes),
                "max_import_kw": 100.0,
            }
        )
    return {
        "scenario_version": 1,
        "horizon": {"start": ts(0), "slot_minutes": slot_minutes, "slots": n_slots},
        "objective": {"carbon_price_per_tonne": 100.0},
        "regions": regions,
        "sites": sites,
        "vehicles": vehicles,
        "jobs": jobs,
        "dr_events": events,
    }
