"""The cloud-cover model (Larson scaling + Erbs split) with real pvlib."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pvlib
import pytest

from forecasting.cloud import OVERCAST_GHI_FRAC, cloud_cover_weather, ghi_from_cloud_cover
from forecasting.solar import PvSystemSpec, clear_sky_pv_kw, pv_kw_from_irradiance
from forecasting.timegrid import SlotGrid

MIDSUMMER = SlotGrid(datetime(2020, 6, 21, tzinfo=UTC), 15, 96)
COVERS_PCT = (0.0, 25.0, 50.0, 75.0, 100.0)


def cloudy_pv_kw(spec: PvSystemSpec, cover_pct: float, grid: SlotGrid = MIDSUMMER) -> np.ndarray:
    times = grid.sample_times(3)
    n = len(times)
    weather = cloud_cover_weather(
        spec, times, np.full(n, cover_pct), np.full(n, 20.0), np.full(n, 1.0)
    )
    return pv_kw_from_irradiance(spec, weather, grid)


def test_ghi_scales_linearly_between_clear_and_overcast() -> None:
    clear = np.array([0.0, 200.0, 800.0])
    np.testing.assert_allclose(ghi_from_cloud_cover(clear, np.zeros(3)), clear)
    np.testing.assert_allclose(ghi_from_cloud_cover(clear, np.full(3, 100.0)), 0.35 * clear)
    np.testing.assert_allclose(
        ghi_from_cloud_cover(clear, np.full(3, 50.0)), (0.35 + 0.65 * 0.5) * clear
    )
    assert OVERCAST_GHI_FRAC == 0.35


@pytest.mark.parametrize("cover", [-1.0, 100.5, float("nan")])
def test_cloud_cover_outside_0_100_raises(cover: float) -> None:
    with pytest.raises(ValueError, match="cloud_cover_pct"):
        ghi_from_cloud_cover(np.array([500.0]), np.array([cover]))


def test_components_close_on_the_horizontal(berlin_10kwp: PvSystemSpec) -> None:
    times = MIDSUMMER.sample_times(1)
    weather = cloud_cover_weather(
        berlin_10kwp, times, np.full(len(times), 40.0), np.full(len(times), 20.0), np.ones(96)
    )
    zenith = berlin_10kwp.location.get_solarposition(times)["zenith"].to_numpy()
    closure = weather["dni_w_per_m2"] * np.cos(np.radians(zenith)) + weather["dhi_w_per_m2"]
    day = zenith < 85
    np.testing.assert_allclose(closure[day], weather["ghi_w_per_m2"][day], rtol=1e-9)
    assert (weather[["ghi_w_per_m2", "dni_w_per_m2", "dhi_w_per_m2"]] >= 0).all().all()


def test_pv_falls_as_cloud_cover_rises(berlin_10kwp: PvSystemSpec) -> None:
    by_cover = [cloudy_pv_kw(berlin_10kwp, cover) for cover in COVERS_PCT]
    energies_kwh = [float(pv.sum() * MIDSUMMER.dt_h) for pv in by_cover]
    assert all(a > b for a, b in itertools.pairwise(energies_kwh))
    # Slot by slot while the sun is in front of the array; early and late in a June day
    # it shines on the back, and a little cloud adds diffuse light (see forecasting.cloud).
    hours = MIDSUMMER.index.hour
    front = (hours >= 6) & (hours < 16)
    for less_cloud, more_cloud in itertools.pairwise(by_cover):
        assert (more_cloud[front] < less_cloud[front]).all()
    # overcast keeps about a third of the day's energy: diffuse light only
    assert 0.2 < energies_kwh[-1] / energies_kwh[0] < 0.45


def test_clear_cover_is_close_to_the_clear_sky_model(berlin_10kwp: PvSystemSpec) -> None:
    clear = clear_sky_pv_kw(berlin_10kwp, MIDSUMMER)
    cloudless = cloudy_pv_kw(berlin_10kwp, 0.0)
    # same GHI; Erbs splits it into beam and diffuse a little differently from Ineichen
    assert cloudless.sum() == pytest.approx(clear.sum(), rel=0.06)
    assert np.abs(cloudless - clear).max() < 0.08 * clear.max()


def test_erbs_is_called_as_pvlib_documents() -> None:
    # kt = 0.5 at zenith 0 falls in Erbs' middle band: the polynomial diffuse fraction
    dni_extra = float(pvlib.irradiance.get_extra_radiation(172))
    parts = pvlib.irradiance.erbs(np.array([0.5 * dni_extra]), np.array([0.0]), np.array([172]))
    kt = 0.5
    fraction = 0.9511 - 0.1604 * kt + 4.388 * kt**2 - 16.638 * kt**3 + 12.336 * kt**4
    assert parts["dhi"][0] == pytest.approx(fraction * 0.5 * dni_extra, rel=1e-9)
