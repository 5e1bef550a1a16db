"""Derive the small data files committed in the repository from the shared source data.

Usage (from the repository root, with the project's venv)::

    python tools/derive_demo_data.py ../shared/data

Writes, deterministically (same inputs -> same bytes):

* ``forecasting/data/intensity_{de,gb,fr}_2020-{05,06}.csv``: average carbon intensity from
  ``carbon-intensity/{ger,gb,fr}_ci.csv``, native resolution, values unchanged (shortest
  round-trip repr): rows with 2020-05-17T00:00Z <= slot_start < 2020-05-31T00:00Z (the
  look-back of day-ahead forecasts) and 2020-05-31T00:00Z <= slot_start < 2020-07-01T00:00Z.
* ``idlefleet/data/caltech_sessions_2019-03.csv``: one row per Caltech session from
  ``ev-sessions/caltech_2019-03_sessions_flat.csv``.

The inputs are checked against their published sha256 first; a mismatch stops the script.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import pandas as pd

from forecasting.carbon import EXCERPT_FILES, REGIONS, SOURCE_FILES, read_source_csv

#: [start, end) of each excerpt file, in the order of ``EXCERPT_FILES[region]``.
EXCERPT_WINDOWS = (
    (pd.Timestamp("2020-05-17T00:00Z"), pd.Timestamp("2020-05-31T00:00Z")),
    (pd.Timestamp("2020-05-31T00:00Z"), pd.Timestamp("2020-07-01T00:00Z")),
)
SESSIONS_SOURCE = "ev-sessions/caltech_2019-03_sessions_flat.csv"
SESSIONS_OUTPUT = "idlefleet/data/caltech_sessions_2019-03.csv"
SESSIONS_TZ = "America/Los_Angeles"
PERIOD_MINUTES = 5  # acnportal period length of arrival_period / departure_period

# sha256 of the inputs, from ../shared/data/*/README.md.
INPUT_SHA256 = {
    "carbon-intensity/ger_ci.csv": (
        "bb9aa67ed4ce191d8fa0d48346c0c6c0fa8fe82f8e4c94e7cf1c8156c7fb001c"
    ),
    "carbon-intensity/gb_ci.csv": (
        "5c771b6d31c6082343e0d9e3a3fc03d05defb6f4cdcc525a374a26ec337a86ac"
    ),
    "carbon-intensity/fr_ci.csv": (
        "c097e7f5c64afdfb6e168fc4ba5a920b90f84614fe7eb4e60f2daf65cdde0142"
    ),
    SESSIONS_SOURCE: "b78fd60eb484fcb75510b323d3932f954ca46a69f46ec096828f32a56d760a6d",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_inputs(shared: Path) -> None:
    for relative, expected in INPUT_SHA256.items():
        path = shared / relative
        if not path.is_file():
            raise SystemExit(f"input missing: {path}")
        actual = sha256(path)
        if actual != expected:
            raise SystemExit(f"input changed: {path} has sha256 {actual}, expected {expected}")


def write_lines(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8", newline="\n")
    print(f"{path}: {len(rows)} rows, sha256 {sha256(path)}")


def derive_intensity(shared: Path, repo_root: Path) -> None:
    for region in REGIONS:
        series = read_source_csv(shared / "carbon-intensity" / SOURCE_FILES[region])
        for name, (start, end) in zip(EXCERPT_FILES[region], EXCERPT_WINDOWS, strict=True):
            cut = series[(series.index >= start) & (series.index < end)]
            rows = [
                f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{float(v)!r}"
                for t, v in zip(cut.index, cut.to_numpy(), strict=True)
            ]
            write_lines(
                repo_root / "forecasting" / "data" / name, "slot_start,intensity_g_per_kwh", rows
            )


def derive_sessions(shared: Path, repo_root: Path) -> None:
    flat = pd.read_csv(shared / SESSIONS_SOURCE)
    local = pd.to_datetime(flat["connectionTime_utc"], format="ISO8601").dt.tz_convert(SESSIONS_TZ)
    arrival_local_hour = (
        local.dt.hour
        + local.dt.minute / 60.0
        + (local.dt.second + local.dt.microsecond / 1e6) / 3600.0
    )
    periods = flat["departure_period"] - flat["arrival_period"]
    plugged_hours = periods * PERIOD_MINUTES / 60.0
    rows = [
        f"{hour:.4f},{weekday},{plugged:.6f},{float(energy)!r}"
        for hour, weekday, plugged, energy in zip(
            arrival_local_hour,
            local.dt.day_of_week,
            plugged_hours,
            flat["kWhDelivered"],
            strict=True,
        )
    ]
    write_lines(
        repo_root / SESSIONS_OUTPUT,
        "arrival_local_hour,weekday,plugged_hours,energy_kwh",
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared_data_dir", type=Path, help="e.g. ../shared/data")
    parser.add_argument(
        "--repo-root",
        type=Path,
        default=Path(__file__).resolve().parents[1],
        help="where to write (default: this repository)",
    )
    args = parser.parse_args(argv)
    check_inputs(args.shared_data_dir)
    derive_intensity(args.shared_data_dir, args.repo_root)
    derive_sessions(args.shared_data_dir, args.repo_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
