"""Irradiance from a cloud-cover forecast, with pvlib's own functions.

pvlib no longer ships a forecast module; this is the method its former
``pvlib.forecast.ForecastModel.cloud_cover_to_irradiance_clearsky_scaling`` used:

1. clear-sky GHI at the site (Ineichen with Linke turbidity, ``solar.clear_sky_weather``);
2. GHI scaled linearly with cloud cover (Larson et al. 2016)::

       ghi = ghi_clear * (offset + (1 - offset) * (1 - cloud_cover_pct / 100))

   with ``offset = 0.35``: an overcast sky still lets 35 % of the clear-sky GHI through;
3. DNI and DHI from that GHI by the Erbs et al. (1982) diffuse-fraction correlation,
   ``pvlib.irradiance.erbs`` (the former module used DISC for DNI; Erbs gives both
   components from one clearness index).

GHI falls strictly as cloud cover rises. The split into beam and diffuse moves towards
diffuse, so a sun-facing array loses output with more cloud; an array facing away from the
sun sees mostly diffuse light and may not.

References
----------
* D. P. Larson, L. Nonnenmacher, C. F. M. Coimbra, "Day-ahead forecasting of solar power
  output from photovoltaic plants in the American Southwest", Renewable Energy 91 (2016)
  11-20, doi:10.1016/j.renene.2016.01.039.
* D. G. Erbs, S. A. Klein, J. A. Duffie, "Estimation of the diffuse radiation fraction for
  hourly, daily and monthly-average global radiation", Solar Energy 28(4) (1982) 293-302.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib

from forecasting.solar import PvSystemSpec, clear_sky_weather
from forecasting.timegrid import require_utc_index

#: Share of clear-sky GHI that reaches the ground under full cloud cover [-] (Larson 2016).
OVERCAST_GHI_FRAC = 0.35


def ghi_from_cloud_cover(ghi_clear_w_per_m2: np.ndarray, cloud_cover_pct: np.ndarray) -> np.ndarray:
    """GHI under ``cloud_cover_pct`` [%, 0..100] from clear-sky GHI [W/m²] (Larson 2016)."""
    cover = np.asarray(cloud_cover_pct, dtype=float)
    if not (np.isfinite(cover).all() and (cover >= 0).all() and (cover <= 100).all()):
        raise ValueError("cloud_cover_pct must be within [0, 100]")
    clear_frac = 1.0 - cover / 100.0
    return np.asarray(ghi_clear_w_per_m2, dtype=float) * (
        OVERCAST_GHI_FRAC + (1.0 - OVERCAST_GHI_FRAC) * clear_frac
    )


def cloud_cover_weather(
    spec: PvSystemSpec,
    times: pd.DatetimeIndex,
    cloud_cover_pct: np.ndarray,
    temp_air_c: np.ndarray,
    wind_speed_m_per_s: np.ndarray,
) -> pd.DataFrame:
    """Weather at ``times`` [UTC] in the ``solar.WEATHER_COLUMNS`` glossary from cloud cover.

    ``cloud_cover_pct`` [%], ``temp_air_c`` [°C] and ``wind_speed_m_per_s`` [m/s] hold one
    value per time.
    """
    utc = require_utc_index(times, "times")
    clear = clear_sky_weather(spec, utc)
    ghi = ghi_from_cloud_cover(clear["ghi_w_per_m2"].to_numpy(), cloud_cover_pct)
    zenith_deg = spec.location.get_solarposition(utc)["zenith"].to_numpy()
    parts = pvlib.irradiance.erbs(ghi, zenith_deg, utc.day_of_year.to_numpy())
    return pd.DataFrame(
        {
            "ghi_w_per_m2": ghi,
            "dni_w_per_m2": np.asarray(parts["dni"], dtype=float),
            "dhi_w_per_m2": np.asarray(parts["dhi"], dtype=float),
            "temp_air_c": np.asarray(temp_air_c, dtype=float),
            "wind_speed_m_per_s": np.asarray(wind_speed_m_per_s, dtype=float),
        },
        index=utc,
    )
