"""The whole loop, end to end, on the real embedded broker."""

from __future__ import annotations

import json
from pathlib import Path

from executor.objects import ObjectStore
from idlefleet.demo.run import DemoConfig, run_demo
from idlefleet.store.embedded import EmbeddedStore
from streams.broker import EmbeddedBroker
from streams.sealing import is_sealed


def test_a_short_demo_runs_every_hop_and_keeps_every_owner_whole(
    broker: EmbeddedBroker, embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    config = DemoConfig(
        cars=6,
        sites=2,
        hours=12,
        seed=3,
        out_dir=tmp_path,
        bootstrap_servers=broker.bootstrap_servers,
        store=embedded_store.settings(),
    )
    summary = run_demo(config, progress=False)

    # Every owner leaves with what they were owed and never dips below their floor.
    assert summary.owners and summary.owners_met == len(summary.owners)
    for strategy in summary.strategies:
        assert strategy.violations == [], strategy.strategy
    realised, immediate, foresight = summary.strategies
    # Carbon-aware planning beats charging on arrival; perfect foresight bounds it.
    assert realised.emissions_kg < immediate.emissions_kg
    assert foresight.emissions_kg <= realised.emissions_kg + 1e-6
    # Cars ran real ONNX work and the service accepted the results.
    done = sum(job.accepted for job in summary.jobs)
    assert done > 0 and done == realised.executions
    assert summary.plans_made >= 2 and summary.dead_letters == 0

    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["cars"] == 6
    assert "owners who left with what they were owed: 6/6" in (tmp_path / "summary.txt").read_text()
    # Every output went to the store, sealed; the agents' own directories hold only the
    # (sealed) models they fetched, and nothing of the service's.
    store = ObjectStore(embedded_store.settings().store_config())
    objects = store.list(f"{embedded_store.url}/demo-3")
    outputs = [uri for uri in objects if "/outputs/" in uri]
    assert len(outputs) == done
    assert all(is_sealed(store.get(uri, 10**6)) for uri in outputs[:5])
    kept = [p for p in (tmp_path / "agents").rglob("*") if p.is_file()]
    assert kept and all(p.parent.name == "models" and is_sealed(p.read_bytes()) for p in kept)


def test_the_demo_runs_magikas_pretrained_model_on_real_files(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    config = DemoConfig(
        cars=4,
        sites=1,
        hours=12,
        seed=5,
        out_dir=tmp_path,
        bootstrap_servers=broker.bootstrap_servers,
        model="magika",
    )
    summary = run_demo(config, progress=False)
    assert summary.owners_met == len(summary.owners)
    # Every file of every done shard got a content type; Python sources are among them.
    done_shards = sum(job.accepted for job in summary.jobs if not job.job_id.startswith("valid"))
    assert done_shards > 0
    assert sum(summary.content_types.values()) > 0
    assert summary.content_types.get("python", 0) > 0
    assert "magika labelled" in (tmp_path / "summary.txt").read_text()


def test_the_demo_over_ocpp_charges_cars_as_their_stations_profiles_say(
    broker: EmbeddedBroker, embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    config = DemoConfig(
        cars=8,
        sites=2,
        hours=12,
        seed=7,  # cars that leave, and charge, within the 12 hours
        out_dir=tmp_path,
        bootstrap_servers=broker.bootstrap_servers,
        store=embedded_store.settings(),
        ocpp=True,
    )
    summary = run_demo(config, progress=False)
    ocpp = summary.ocpp
    assert ocpp is not None and ocpp.stations == 8
    # Physics first, by any path: no rule broken, no floor crossed.
    assert summary.floors_held
    assert all(strategy.violations == [] for strategy in summary.strategies)
    # The real path: every station got its boot default and plans as profiles; what stations
    # measured reached the planner, nothing was unreadable or unmapped.
    assert ocpp.profiles_received >= 2 * ocpp.stations
    assert ocpp.measured_states > 0 and ocpp.dead_letters == 0 and summary.dead_letters == 0
    # Cars charged what they were dispatched, a power below the station's least current
    # included (at that current for part of the slot; rounded up to whole seconds).
    assert ocpp.dispatched_kwh > 0
    assert abs(ocpp.metered_kwh - ocpp.dispatched_kwh) <= 0.01 * ocpp.dispatched_kwh
    assert sum(c.reports_soc for c in ocpp.chargers) == 4  # the rest are estimated
    assert sum(job.accepted for job in summary.jobs) > 0
    assert "OCPP: 8 stations" in (tmp_path / "summary.txt").read_text()
