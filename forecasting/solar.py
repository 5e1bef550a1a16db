"""PV power of a parked-car site from pvlib, from clear-sky or any weather irradiance.

The chain follows PVWatts v5 built from pvlib functions:

1. solar position (NREL SPA, numpy) and extraterrestrial irradiance;
2. plane-of-array irradiance by Hay-Davies transposition, ground albedo 0.25;
3. reflection loss on the beam component (physical IAM, glass);
4. cell temperature by the SAPM model, open rack, glass/polymer module;
5. PVWatts DC power with a temperature coefficient, then flat system losses;
6. PVWatts inverter, clipped at the AC limit.

Instantaneous power is evaluated at sub-step midpoints inside each slot and averaged, so a
slot value is the MEAN AC power over ``[start, start + Δ)`` [kW] and ``pv_kw * dt_h`` is the
slot energy [kWh].

Weather frames use our glossary, not pvlib's names (see ``CLEARSKY_VARIABLE_MAP``):
``ghi_w_per_m2``, ``dni_w_per_m2``, ``dhi_w_per_m2`` [W/m²], ``temp_air_c`` [°C] and
``wind_speed_m_per_s`` [m/s], indexed by UTC sample times. Weather from a cloud-cover
forecast, a CSV or a TMY file is turned into such frames by ``forecasting.cloud`` and
``forecasting.weather``.

Time zones: a site has a civil zone (``PvSystemSpec.timezone``, carried to pvlib's
``Location``), but every computation and every output is on UTC instants, so a DST change
never shifts, drops or repeats a slot; a local day simply has 23 or 25 hours of slots.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pvlib

from forecasting.timegrid import SlotGrid, require_utc_index

#: pvlib clear-sky output -> our glossary.
CLEARSKY_VARIABLE_MAP = {"ghi": "ghi_w_per_m2", "dni": "dni_w_per_m2", "dhi": "dhi_w_per_m2"}
WEATHER_COLUMNS = (
    "ghi_w_per_m2",
    "dni_w_per_m2",
    "dhi_w_per_m2",
    "temp_air_c",
    "wind_speed_m_per_s",
)

# PVWatts v5 defaults (Dobos 2014) and model choices; fixed for now, not settings.
GAMMA_PDC_PER_C = -0.004  # DC power temperature coefficient [1/°C]
INVERTER_EFFICIENCY_NOMINAL_FRAC = 0.96  # eta_inv_nom [-]
ALBEDO_FRAC = 0.25  # ground reflectance [-]
SAPM_TEMPERATURE_PARAMS = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][
    "open_rack_glass_polymer"
]
CLEAR_SKY_TEMP_AIR_C = 20.0  # default air temperature for clear-sky runs [°C]
CLEAR_SKY_WIND_SPEED_M_PER_S = 1.0  # default wind speed for clear-sky runs [m/s]


@dataclass(frozen=True)
class PvSystemSpec:
    """A fixed-tilt PV array and its inverter.

    Attributes
    ----------
    latitude_deg, longitude_deg : float
        Site position [°], north and east positive.
    altitude_m : float
        Site altitude above sea level [m].
    dc_peak_kw : float
        DC nameplate at STC [kW] (PVWatts ``pdc0``).
    tilt_deg : float
        Module tilt from horizontal [°], 0..90.
    azimuth_deg : float
        Direction the modules face [°], clockwise from north (180 = south), pvlib convention.
    losses_pct : float
        DC system losses [%], 0..100 (PVWatts default 14): soiling, wiring, mismatch, ...
    ac_limit_kw : float | None
        Inverter AC limit [kW]. ``None`` sizes the inverter to the DC nameplate (DC input
        limit ``dc_peak_kw``, AC limit ``0.96 * dc_peak_kw``), which a clear sky with 14 %
        losses does not reach.
    timezone : str
        The site's civil time zone, an IANA name such as ``Europe/Berlin`` (default UTC).
    """

    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    dc_peak_kw: float
    tilt_deg: float
    azimuth_deg: float
    losses_pct: float = 14.0
    ac_limit_kw: float | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        _require_range("latitude_deg", self.latitude_deg, -90.0, 90.0)
        _require_range("longitude_deg", self.longitude_deg, -180.0, 180.0)
        _require_range("altitude_m", self.altitude_m, -500.0, 9000.0)
        _require_range("tilt_deg", self.tilt_deg, 0.0, 90.0)
        _require_range("azimuth_deg", self.azimuth_deg, 0.0, 360.0)
        _require_range("losses_pct", self.losses_pct, 0.0, 100.0)
        if not (math.isfinite(self.dc_peak_kw) and self.dc_peak_kw > 0):
            raise ValueError(f"dc_peak_kw must be > 0, got {self.dc_peak_kw}")
        if self.ac_limit_kw is not None and not (
            math.isfinite(self.ac_limit_kw) and self.ac_limit_kw > 0
        ):
            raise ValueError(f"ac_limit_kw must be > 0 or None, got {self.ac_limit_kw}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone must be an IANA zone name, got {self.timezone!r}") from exc

    @property
    def location(self) -> pvlib.location.Location:
        """The pvlib ``Location`` of the site, in its civil time zone."""
        return pvlib.location.Location(
            self.latitude_deg, self.longitude_deg, tz=self.timezone, altitude=self.altitude_m
        )

    @property
    def inverter_dc_limit_kw(self) -> float:
        """PVWatts inverter DC input rating ``pdc0`` [kW]."""
        if self.ac_limit_kw is None:
            return self.dc_peak_kw
        return self.ac_limit_kw / INVERTER_EFFICIENCY_NOMINAL_FRAC


def _require_range(field: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{field} must be within [{low}, {high}], got {value}")


def _dni_extra_w_per_m2(times: pd.DatetimeIndex) -> np.ndarray:
    """Extraterrestrial normal irradiance [W/m²] (Spencer), from the UTC day of year.

    Passing day numbers rather than the index keeps pvlib off pandas' deprecated
    ``DatetimeIndex.dayofyear``.
    """
    return np.asarray(pvlib.irradiance.get_extra_radiation(times.day_of_year.to_numpy()))


def linke_turbidity(spec: PvSystemSpec, times: pd.DatetimeIndex) -> pd.Series:
    """Linke turbidity [-] at the site from pvlib's monthly climatology (Meteotest/SoDa).

    Monthly values sit at the middle of each calendar month and are interpolated linearly
    to the UTC day of year, as ``pvlib.clearsky.lookup_linke_turbidity`` does. That
    function is called only for the twelve monthly values, because its interpolation
    reads pandas' deprecated ``DatetimeIndex.dayofyear``.
    """
    utc = require_utc_index(times, "times")
    mid_months = pd.DatetimeIndex([f"2001-{m:02d}-15" for m in range(1, 13)], tz="UTC")
    monthly = pvlib.clearsky.lookup_linke_turbidity(
        mid_months, spec.latitude_deg, spec.longitude_deg, interp_turbidity=False
    ).to_numpy(dtype=float)
    values = np.concatenate([[monthly[-1]], monthly, [monthly[0]]])
    day = utc.day_of_year.to_numpy()
    by_leap = {leap: np.interp(day, _month_middles_doy(leap), values) for leap in (False, True)}
    leap_year = np.asarray(utc.is_leap_year)
    return pd.Series(
        np.where(leap_year, by_leap[True], by_leap[False]), index=utc, name="linke_turbidity"
    )


def _month_middles_doy(leap: bool) -> np.ndarray:
    """Day of year of the middle of each month, with last December and next January."""
    year = 2020 if leap else 2019
    days = np.array([calendar.monthrange(year, m)[1] for m in range(1, 13)], dtype=np.float64)
    middles = np.cumsum(days) - days / 2.0
    return np.concatenate([[-days[11] / 2.0], middles, [days.sum() + days[0] / 2.0]])


def clear_sky_weather(
    spec: PvSystemSpec,
    times: pd.DatetimeIndex,
    temp_air_c: float = CLEAR_SKY_TEMP_AIR_C,
    wind_speed_m_per_s: float = CLEAR_SKY_WIND_SPEED_M_PER_S,
) -> pd.DataFrame:
    """Clear-sky weather at ``times`` [UTC]: Ineichen GHI/DNI/DHI [W/m²] plus constant air.

    The Linke turbidity comes from pvlib's monthly climatology for the site, interpolated
    to the day (see ``linke_turbidity``). Air temperature [°C] and wind speed [m/s] are
    constants.
    """
    utc = require_utc_index(times, "times")
    location = spec.location
    clearsky = location.get_clearsky(
        utc,
        model="ineichen",
        solar_position=location.get_solarposition(utc, temperature=temp_air_c),
        dni_extra=_dni_extra_w_per_m2(utc),
        linke_turbidity=linke_turbidity(spec, utc),
    )
    weather = clearsky.rename(columns=CLEARSKY_VARIABLE_MAP)[list(CLEARSKY_VARIABLE_MAP.values())]
    weather["temp_air_c"] = float(temp_air_c)
    weather["wind_speed_m_per_s"] = float(wind_speed_m_per_s)
    return weather


def ac_power_kw(spec: PvSystemSpec, weather: pd.DataFrame) -> pd.Series:
    """Instantaneous AC power [kW] at each row of ``weather``, within ``[0, ac_limit_kw]``.

    ``weather`` holds the ``WEATHER_COLUMNS`` glossary columns, indexed by UTC times.
    """
    times = require_utc_index(weather.index, "weather.index")
    missing = [c for c in WEATHER_COLUMNS if c not in weather.columns]
    if missing:
        raise ValueError(f"weather lacks column(s) {missing}; expected {list(WEATHER_COLUMNS)}")
    w = weather.set_axis(times, axis=0)
    temp_air_c = w["temp_air_c"]

    solpos = spec.location.get_solarposition(times, temperature=temp_air_c)
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt=spec.tilt_deg,
        surface_azimuth=spec.azimuth_deg,
        solar_zenith=solpos["apparent_zenith"],
        solar_azimuth=solpos["azimuth"],
        dni=w["dni_w_per_m2"],
        ghi=w["ghi_w_per_m2"],
        dhi=w["dhi_w_per_m2"],
        dni_extra=_dni_extra_w_per_m2(times),
        albedo=ALBEDO_FRAC,
        model="haydavies",
    )
    aoi_deg = pvlib.irradiance.aoi(
        spec.tilt_deg, spec.azimuth_deg, solpos["apparent_zenith"], solpos["azimuth"]
    )
    effective_w_per_m2 = poa["poa_direct"] * pvlib.iam.physical(aoi_deg) + poa["poa_diffuse"]
    temp_cell_c = pvlib.temperature.sapm_cell(
        poa["poa_global"], temp_air_c, w["wind_speed_m_per_s"], **SAPM_TEMPERATURE_PARAMS
    )
    dc_kw = pvlib.pvsystem.pvwatts_dc(
        effective_w_per_m2, temp_cell_c, pdc0=spec.dc_peak_kw, gamma_pdc=GAMMA_PDC_PER_C
    ) * (1.0 - spec.losses_pct / 100.0)
    ac_kw = pvlib.inverter.pvwatts(
        dc_kw.clip(lower=0.0),
        pdc0=spec.inverter_dc_limit_kw,
        eta_inv_nom=INVERTER_EFFICIENCY_NOMINAL_FRAC,
    )
    upper = np.inf if spec.ac_limit_kw is None else spec.ac_limit_kw
    return pd.Series(np.clip(np.asarray(ac_kw, dtype=float), 0.0, upper), index=times, name="pv_kw")


def slot_means(values: pd.Series, grid: SlotGrid) -> np.ndarray:
    """Mean of the samples in each slot of ``grid``; every slot needs at least one sample.

    Equal weights per sample: pass evenly spaced samples (e.g. ``grid.sample_times``).
    """
    slot = grid.slot_of(require_utc_index(values.index, "values.index"))
    counts = np.bincount(slot, minlength=grid.slots)
    if (counts == 0).any():
        first = grid.slot_start(int(np.argmin(counts > 0)))
        raise ValueError(f"{int((counts == 0).sum())} slot(s) have no samples, first {first}")
    sums = np.bincount(slot, weights=values.to_numpy(dtype=float), minlength=grid.slots)
    return sums / counts


def pv_kw_from_irradiance(spec: PvSystemSpec, weather: pd.DataFrame, grid: SlotGrid) -> np.ndarray:
    """Mean AC power per slot [kW] from weather samples inside ``grid``.

    ``weather`` holds the ``WEATHER_COLUMNS`` at evenly spaced UTC times, at least one in
    every slot (``grid.sample_times(n)`` gives suitable times). Returns ``grid.slots`` values.
    """
    return slot_means(ac_power_kw(spec, weather), grid)


def clear_sky_pv_kw(spec: PvSystemSpec, grid: SlotGrid, substep_minutes: int = 5) -> np.ndarray:
    """Clear-sky mean AC power per slot [kW], ``grid.slots`` values in ``[0, ac_limit_kw]``.

    Samples at the midpoints of ``ceil(slot_minutes / substep_minutes)`` equal sub-steps per
    slot [min], with Ineichen clear-sky irradiance, 20 °C air and 1 m/s wind.
    """
    if substep_minutes < 1:
        raise ValueError(f"substep_minutes must be >= 1, got {substep_minutes}")
    times = grid.sample_times(math.ceil(grid.slot_minutes / substep_minutes))
    return pv_kw_from_irradiance(spec, clear_sky_weather(spec, times), grid)
