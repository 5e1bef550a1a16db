"""The car agent's per-shard overhead against bare onnxruntime, and dispatch-to-start latency.

`idlefleet bench executor [--shards N --files-per-shard F --assignments A]` prints both.

Overhead: the same real model (Magika's file-type classifier from its wheel) on the same
shards of real files (the Python standard library's sources), once through bare
`InferenceSession.run` on arrays in memory (the baseline, measured in the same run) and
once through the whole agent path: decode the assignment, verify the model (once per job),
load the shard, run, write the output, build and encode the result.

Latency: assignments published to the embedded broker, timed from `send` to the moment
the agents' reader hands each one to the agent.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sysconfig
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import onnxruntime as ort

from executor.agent import VehicleAgent
from executor.pretrained import find_magika_model, magika_features
from executor.runtime import OnnxRunner, choose_providers
from streams.broker import EmbeddedBroker
from streams.clients import KafkaSettings, ensure_topics
from streams.consumer import StreamReader
from streams.messages import Assignment, Message, ModelRef, WorkItem
from streams.producer import Publisher, Signer
from streams.serde import decode, encode
from streams.topics import Stream
from streams.validation import RecordRules

T0 = datetime(2020, 6, 1, 12, tzinfo=UTC)


class NullCharger:
    """The benchmark measures compute; charging is accepted and ignored."""

    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        return None


def real_file_shards(shards: int, per_shard: int) -> list[np.ndarray]:
    """Feature rows of Python standard-library files, `per_shard` files a shard."""
    model = find_magika_model()
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))
    needed = shards * per_shard
    rows = [magika_features(files[i % len(files)].read_bytes(), model) for i in range(needed)]
    return [np.stack(rows[i * per_shard : (i + 1) * per_shard]) for i in range(shards)]


def assignment_for(index: int, item: WorkItem | None) -> Assignment:
    return Assignment(
        assignment_id=f"a-{index}",
        plan_id="bench",
        vehicle_id="car-1",
        slot_start=T0,
        slot_end=T0 + timedelta(minutes=15),
        charge_power_kw=0.0,
        work=[] if item is None else [item],
    )


def measure_overhead(shards: list[np.ndarray], workdir: Path) -> tuple[float, float]:
    """Median seconds per shard: bare onnxruntime, and the agent's whole path."""
    model = find_magika_model()
    ref = ModelRef(uri=model.path.as_uri(), sha256=model.sha256)
    runner = OnnxRunner()
    session = ort.InferenceSession(
        model.path.read_bytes(), providers=choose_providers(ort.get_available_providers())
    )
    input_name = session.get_inputs()[0].name
    payloads = []
    for index, shard in enumerate(shards):
        path = workdir / f"shard-{index}.npy"
        np.save(path, shard, allow_pickle=False)
        item = WorkItem(
            work_id=f"w-{index}",
            job_id="bench",
            shard_index=index,
            model=ref,
            input_uri=path.as_uri(),
            output_uri=(workdir / "out").as_uri(),
        )
        payloads.append(encode(assignment_for(index, item)))
    (workdir / "out").mkdir()
    agent = VehicleAgent("car-1", runner, NullCharger(), compute_kw=0.3, clock=lambda: T0)
    # Warm both paths: the session, the caches, the page cache.
    session.run(None, {input_name: shards[0]})
    agent.handle(decode(Stream.ASSIGNMENTS, payloads[0]))  # type: ignore[arg-type]

    # Interleaved, shard by shard, so that load from elsewhere hits both paths alike.
    bare_times, agent_times = [], []
    for shard, payload in zip(shards, payloads, strict=True):
        started = time.perf_counter()
        session.run(None, {input_name: shard})
        bare_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        assignment = decode(Stream.ASSIGNMENTS, payload)
        assert isinstance(assignment, Assignment)
        for result in agent.handle(assignment):
            assert result.status == "done", result.reason
            encode(result)
        agent_times.append(time.perf_counter() - started)
    return statistics.median(bare_times), statistics.median(agent_times)


def measure_dispatch_latency(
    count: int,
    interval_s: float,
    signer: Signer | None = None,
    rules: RecordRules | None = None,
    settings: KafkaSettings | None = None,
) -> list[float]:
    """Send-to-handler latency [s] of `count` assignments through the embedded broker (or
    `settings`' broker), signed by `signer` and checked by the agents' `rules` when given."""
    received: dict[str, float] = {}
    done = threading.Event()

    def on_assignment(stream: Stream, message: Message) -> None:
        assert isinstance(message, Assignment)
        received[message.assignment_id] = time.perf_counter()
        if len(received) == count:
            done.set()

    with contextlib.ExitStack() as stack:
        if settings is None:
            broker = stack.enter_context(EmbeddedBroker())
            settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
            ensure_topics(settings)
        publisher = Publisher(settings, signer)
        reader = StreamReader(
            settings,
            f"bench-agents-{uuid.uuid4().hex[:8]}",
            [Stream.ASSIGNMENTS],
            on_assignment,
            publisher,
            rules=rules,
            poll_timeout_ms=50,
        ).start()
        warm = assignment_for(-1, None)
        publisher.publish(Stream.ASSIGNMENTS, warm).get(timeout=10)
        reader.wait_caught_up(timeout_s=30)
        received.clear()
        sent: dict[str, float] = {}
        for index in range(count):
            assignment = assignment_for(index, None)
            sent[assignment.assignment_id] = time.perf_counter()
            publisher.publish(Stream.ASSIGNMENTS, assignment)
            publisher.flush()
            time.sleep(interval_s)
        done.wait(timeout=60)
        reader.stop()
        publisher.close()
    return [received[key] - sent[key] for key in sent if key in received]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench executor", description=__doc__)
    parser.add_argument("--shards", type=int, default=15)
    parser.add_argument("--files-per-shard", type=int, default=250)
    parser.add_argument("--assignments", type=int, default=300)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args(argv)

    shards = real_file_shards(args.shards, args.files_per_shard)
    with tempfile.TemporaryDirectory() as workdir:
        bare_s, agent_s = measure_overhead(shards, Path(workdir))
    overhead_frac = agent_s / bare_s - 1.0
    print(
        f"per shard of {args.files_per_shard} files: bare onnxruntime {bare_s * 1000:.1f} ms, "
        f"agent {agent_s * 1000:.1f} ms (fixed cost {(agent_s - bare_s) * 1000:.2f} ms)"
    )
    latencies = sorted(measure_dispatch_latency(args.assignments, args.interval_ms / 1000))
    lost = args.assignments - len(latencies)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(
        f"dispatch to start over {len(latencies)} assignments ({lost} lost): "
        f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )
    print(f"overhead_frac={overhead_frac:.4f} dispatch_p99_s={p99:.3f}")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
