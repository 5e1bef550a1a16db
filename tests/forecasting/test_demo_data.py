"""The committed data excerpts: structure, and regeneration from ../shared when present."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from forecasting.carbon import EXCERPT_FILES, REGIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
SESSIONS = REPO_ROOT / "idlefleet" / "data" / "caltech_sessions_2019-03.csv"
EXCERPT_DIR = REPO_ROOT / "forecasting" / "data"


def test_caltech_sessions_distribution() -> None:
    sessions = pd.read_csv(SESSIONS)
    assert list(sessions.columns) == [
        "arrival_local_hour",
        "weekday",
        "plugged_hours",
        "energy_kwh",
    ]
    assert len(sessions) == 954
    assert sessions["arrival_local_hour"].between(0, 24, inclusive="left").all()
    assert set(sessions["weekday"]) <= set(range(7))
    assert (sessions["plugged_hours"] > 0).all()
    assert sessions["plugged_hours"].max() == pytest.approx(214.25)
    assert sessions["energy_kwh"].sum() == pytest.approx(8900.52, abs=0.01)
    assert sessions["energy_kwh"].median() == pytest.approx(6.674)
    # mostly a weekday-morning workplace site
    assert (sessions["weekday"] < 5).mean() > 0.8
    assert 8 < sessions["arrival_local_hour"].median() < 12


@pytest.mark.parametrize("region", REGIONS)
def test_excerpt_file_format(region: str) -> None:
    may, june = EXCERPT_FILES[region]
    for name, first in ((may, "2020-05-17T00:00:00Z,"), (june, "2020-05-31T00:00:00Z,")):
        lines = (EXCERPT_DIR / name).read_text(encoding="utf-8").splitlines()
        assert lines[0] == "slot_start,intensity_g_per_kwh"
        assert lines[1].startswith(first)
        assert all(line[19] == "Z" for line in lines[1:])


def test_derive_script_regenerates_committed_files(shared_data_dir: Path, tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tools" / "derive_demo_data.py"),
            str(shared_data_dir),
            "--repo-root",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    produced = [f"forecasting/data/{name}" for r in REGIONS for name in EXCERPT_FILES[r]]
    produced.append("idlefleet/data/caltech_sessions_2019-03.csv")
    for relative in produced:
        assert (tmp_path / relative).read_bytes() == (REPO_ROOT / relative).read_bytes(), relative
