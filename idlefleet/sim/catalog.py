"""The demo's world: depots in the regions with real carbon data, and jobs on real inputs.

`demo_sites` places depots (the catalogue's city centres, or numbered depots in the districts
around them) sized for their share of the cars; `demo_jobs` writes a job's input shards and
returns it with its submit time, for the demo's small MLP or Magika's pre-trained classifier.
"""

from __future__ import annotations

import hashlib
import math
import sysconfig
from datetime import datetime
from pathlib import Path

import numpy as np

from executor.demo_model import build_demo_model
from executor.pretrained import find_magika_model, magika_features
from idlefleet.sim.fleet import load_sessions
from idlefleet.sites import SiteConfig
from streams.messages import Job, ModelRef

#: Depots in the three regions with real carbon data (city-centre coordinates).
SITE_CATALOG = (
    ("berlin-depot", "DE", "Europe/Berlin", 52.520, 13.405, 34.0),
    ("london-depot", "GB", "Europe/London", 51.507, -0.128, 11.0),
    ("paris-depot", "FR", "Europe/Paris", 48.857, 2.352, 35.0),
    ("munich-depot", "DE", "Europe/Berlin", 48.137, 11.575, 519.0),
    ("manchester-depot", "GB", "Europe/London", 53.481, -2.242, 38.0),
    ("lyon-depot", "FR", "Europe/Paris", 45.764, 4.836, 173.0),
)


#: "mlp": a small model built here, on features of the real Caltech sessions;
#: "magika": Google's pre-trained file-type classifier from its wheel, on real files.
DEMO_MODELS = ("mlp", "magika")
#: Files the Magika demo labels: this Python's standard library, many kinds of content.
MAGIKA_FILES = 954


#: Depots of one city sit on a ring of districts this far from its centre [deg of latitude].
DISTRICT_RING_DEG = 0.08
DISTRICTS = 8


def demo_sites(count: int, cars: int, region: str | None = None) -> list[SiteConfig]:
    """`count` sites, each sized for its share of the cars.

    Without `region`: the first `count` depots of the catalog (1..6). With `region`: `count`
    numbered depots (`berlin-depot-0001`, ...) in the districts around the region's cities,
    taken in turn.
    """
    if region is None and not 1 <= count <= len(SITE_CATALOG):
        raise ValueError(f"--sites must be 1..{len(SITE_CATALOG)}, got {count}")
    if count < 1:
        raise ValueError(f"--sites must be at least 1, got {count}")
    per_site = max(1, -(-cars // count))
    cities = [entry for entry in SITE_CATALOG if region is None or entry[1] == region]
    if not cities:
        regions = sorted({entry[1] for entry in SITE_CATALOG})
        raise ValueError(f"--region must be one of {', '.join(regions)}, got {region!r}")
    places = []
    for number in range(count):
        site_id, site_region, zone, lat, lon, alt = cities[number % len(cities)]
        if region is not None:
            turn = 2 * math.pi * ((number // len(cities)) % DISTRICTS) / DISTRICTS
            site_id = f"{site_id}-{number + 1:04d}"
            lon += DISTRICT_RING_DEG * math.sin(turn) / math.cos(math.radians(lat))
            lat += DISTRICT_RING_DEG * math.cos(turn)
        places.append((site_id, site_region, zone, round(lat, 4), round(lon, 4), alt))
    return [
        SiteConfig(
            site_id=site_id,
            region=site_region,
            timezone=zone,
            latitude_deg=lat,
            longitude_deg=lon,
            altitude_m=alt,
            # Half the cars may charge at full power at once: the connection binds.
            grid_limit_kw=max(22.0, 11.0 * per_site * 0.5),
            pv_dc_peak_kw=round(3.0 * per_site, 1),
        )
        for site_id, site_region, zone, lat, lon, alt in places
    ]


def demo_jobs(
    cars: int, start: datetime, end: datetime, out_dir: Path, model: str = "mlp", seed: int = 7
) -> list[tuple[datetime, Job]]:
    """Inference jobs on real input, with submit times (`model` as in `DemoConfig`)."""
    ref, features = magika_inputs(seed) if model == "magika" else mlp_inputs(out_dir)
    kind = "file-types" if model == "magika" else "embeddings"
    specs = (
        (f"session-{kind}", 4 * cars, 1, start, start, end),
        (
            f"validated-{kind}",
            cars,
            2,
            start,
            start + (end - start) / 4,
            end - (end - start) / 4,
        ),
        (f"late-{kind}", cars, 1, start + (end - start) / 2, start + (end - start) / 2, end),
    )
    jobs = []
    for job_id, shards, replicas, submitted, release, deadline in specs:
        input_dir = out_dir / "inputs" / job_id
        input_dir.mkdir(parents=True, exist_ok=True)
        uris = []
        for index, chunk in enumerate(np.array_split(features, shards)):
            path = input_dir / f"shard-{index:04d}.npy"
            np.save(path, chunk, allow_pickle=False)
            uris.append(path.resolve().as_uri())
        output_dir = out_dir / "outputs" / job_id
        output_dir.mkdir(parents=True, exist_ok=True)
        jobs.append(
            (
                submitted,
                Job(
                    job_id=job_id,
                    submitted_at=submitted,
                    model=ref,
                    input_uris=uris,
                    output_uri=output_dir.resolve().as_uri(),
                    replicas=replicas,
                    value_per_shard=0.5,
                    release=release,
                    deadline=deadline,
                ),
            )
        )
    return jobs


def mlp_inputs(out_dir: Path) -> tuple[ModelRef, np.ndarray]:
    """The demo MLP (written under `out_dir`) and features of the real Caltech sessions."""
    model_path = out_dir / "models" / "demo-mlp.onnx"
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_bytes = build_demo_model()
    model_path.write_bytes(model_bytes)
    ref = ModelRef(
        uri=model_path.resolve().as_uri(), sha256=hashlib.sha256(model_bytes).hexdigest()
    )
    sessions = load_sessions()
    features = np.array(
        [
            [s.arrival_local_hour / 24, s.weekday / 6, s.plugged_hours / 24, s.energy_kwh / 60]
            for s in sessions
        ],
        dtype=np.float32,
    )
    return ref, features


def magika_inputs(seed: int) -> tuple[ModelRef, np.ndarray]:
    """Magika's model as its wheel ships it, and its features of real files: a seeded draw
    from this Python's standard library (sources, data, certificates, scripts...)."""
    model = find_magika_model()
    files = sorted(
        path
        for path in Path(sysconfig.get_paths()["stdlib"]).rglob("*")
        if path.is_file() and path.suffix != ".pyc" and "__pycache__" not in path.parts
    )
    chosen = np.random.default_rng(seed).choice(len(files), MAGIKA_FILES, replace=False)
    features = np.stack([magika_features(files[i].read_bytes(), model) for i in sorted(chosen)])
    return ModelRef(uri=model.path.as_uri(), sha256=model.sha256), features
