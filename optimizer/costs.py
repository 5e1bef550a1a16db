"""Cost coefficients of the contract objective per unit of energy (no Pyomo)."""

from __future__ import annotations

from optimizer.kpis import G_PER_TONNE
from optimizer.problem import Scenario


def import_cost_per_kwh(scenario: Scenario) -> dict[str, list[float]]:
    """``intensity · carbon_price / 1e6 + price`` per site and slot [currency/kWh]."""
    carbon = scenario.carbon_price_per_tonne / G_PER_TONNE
    out = {}
    for site in scenario.sites:
        region = scenario.region_by_id[site.region]
        out[site.id] = [
            i * carbon + p
            for i, p in zip(region.intensity_g_per_kwh, region.price_per_kwh, strict=True)
        ]
    return out


def deficit_cost_per_kwh(scenario: Scenario) -> dict[str, float]:
    """``(mean intensity · carbon_price / 1e6 + mean price) / η`` per vehicle [currency/kWh]."""
    carbon = scenario.carbon_price_per_tonne / G_PER_TONNE
    out = {}
    for v in scenario.vehicles:
        region = scenario.region_of(v)
        out[v.id] = (
            region.mean_intensity_g_per_kwh * carbon + region.mean_price_per_kwh
        ) / v.charge_efficiency_frac
    return out
