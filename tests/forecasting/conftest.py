"""Shared fixtures for the forecasting tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.solar import PvSystemSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``../shared/data`` next to the repository; skips the test when it is absent."""
    if not (SHARED_DATA_DIR / "carbon-intensity").is_dir():
        pytest.skip(f"shared source data not present at {SHARED_DATA_DIR}")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def berlin_10kwp() -> PvSystemSpec:
    """10 kWp facing south at 35° tilt in Berlin, PVWatts default losses, no AC limit."""
    return PvSystemSpec(
        latitude_deg=52.52,
        longitude_deg=13.405,
        altitude_m=34.0,
        dc_peak_kw=10.0,
        tilt_deg=35.0,
        azimuth_deg=180.0,
        losses_pct=14.0,
    )
