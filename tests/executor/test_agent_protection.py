"""The agent protects its car whatever it is sent: set-points clamped to the charger, no
compute at reserve, only the newest plan revision of a slot, and work that cannot outlive
its lease or exhaust memory. Real onnxruntime sessions in real work processes; the
service-level test runs on the embedded broker. Timings are bounded generously here;
`idlefleet bench executor` measures the speed.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from executor.agent import AgentLimits, AgentPool, VehicleAgent
from executor.demo_model import build_demo_model
from executor.runtime import OnnxRunner
from executor.service import AgentService
from idlefleet.sim.clock import SteppedClock
from streams.clients import KafkaSettings
from streams.messages import Assignment, Result, Telemetry, WorkItem
from streams.topics import Stream
from tests.executor.conftest import SLOT, T0, MakeItem, WriteModel, WriteNpy
from tests.executor.hostile_models import (
    FOREVER,
    long_node_model,
    memory_hog_model,
    runaway_loop_model,
)
from tests.streams import factories

REPO = Path(__file__).parents[2]
COMPUTE_KW = 0.5
#: Generous bound on anything that should take well under a second [s].
PROMPTLY_S = 15.0


@dataclass
class TimedCharger:
    """A charger simulator that remembers every power it was asked to hold, and when [s,
    `time.monotonic`]."""

    calls: list[tuple[datetime, float, float]] = field(default_factory=list)

    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        self.calls.append((slot_start, power_kw, time.monotonic()))

    def powers(self, slot_start: datetime) -> list[float]:
        return [kw for start, kw, _ in self.calls if start == slot_start]


def car(vehicle_id: str, at: datetime, **changes: Any) -> Telemetry:
    """The car parked and plugged in at `at`: 50 of 75 kWh, 10 kWh reserve, 11 kW charger."""
    fields: dict[str, Any] = {
        "event_time": at,
        "energy_kwh": 50.0,
        "reserve_kwh": 10.0,
        "charger_kw": 11.0,
        "compute_kw": 0.3,
    }
    return factories.telemetry(vehicle_id, **{**fields, **changes})


def assignment(
    vehicle_id: str,
    work: list[WorkItem],
    power_kw: float,
    *,
    slot: int = 0,
    revision: int = 0,
    plan_id: str = "plan-1",
) -> Assignment:
    start = T0 + slot * SLOT
    return Assignment(
        assignment_id=f"a-{vehicle_id}-{slot}-{plan_id}-{revision}",
        plan_id=plan_id,
        plan_revision=revision,
        vehicle_id=vehicle_id,
        slot_start=start,
        slot_end=start + SLOT,
        charge_power_kw=power_kw,
        work=work,
    )


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout_s:.0f} s"
        time.sleep(0.01)


@pytest.fixture
def agent(runner: OnnxRunner, clock: SteppedClock) -> VehicleAgent:
    return VehicleAgent("car-1", runner, TimedCharger(), COMPUTE_KW, clock)


MakeHostile = Callable[[str, bytes, np.ndarray], WorkItem]


@pytest.fixture
def hostile(write_model: WriteModel, write_npy: WriteNpy, make_item: MakeItem) -> MakeHostile:
    """A work item of `model` (bytes) on `rows`, both written under `name`."""

    def make(name: str, model: bytes, rows: np.ndarray) -> WorkItem:
        return make_item(
            model=write_model(f"{name}.onnx", model), input_uri=write_npy(f"{name}.npy", rows)
        )

    return make


def charger_of(agent: VehicleAgent) -> TimedCharger:
    assert isinstance(agent.charger, TimedCharger)
    return agent.charger


# --- set-points -------------------------------------------------------------------------------


def test_a_set_point_above_the_charger_limit_is_clamped_and_logged(
    runner: OnnxRunner, clock: SteppedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="executor.agent")
    configured = VehicleAgent("car-1", runner, TimedCharger(), COMPUTE_KW, clock, charger_kw=7.4)
    assert configured.handle(assignment("car-1", [], 22.0)) == []
    assert charger_of(configured).powers(T0) == [7.4]
    assert "clamps the 22.000 kW set-point" in caplog.text

    told = VehicleAgent("car-1", runner, TimedCharger(), COMPUTE_KW, clock, charger_kw=11.0)
    told.observe(car("car-1", T0, charger_kw=3.7))  # the car's own report is lower
    told.handle(assignment("car-1", [], 11.0, slot=1))
    told.handle(assignment("car-1", [], 2.0, slot=2))  # within the limit: as sent
    assert [kw for _, kw, _ in charger_of(told).calls] == [3.7, 2.0]
    assert told.charger_limit_kw == 3.7


def test_an_older_plan_revision_does_not_override_the_set_point(
    agent: VehicleAgent, make_item: MakeItem, write_npy: WriteNpy, features: np.ndarray
) -> None:
    item = make_item(input_uri=write_npy("x.npy", features))
    newer = assignment("car-1", [], 7.0, revision=2_000, plan_id="plan-w2")
    older = assignment("car-1", [item], 11.0, revision=1_000, plan_id="plan-w1")
    rival = assignment("car-1", [], 3.0, revision=2_000, plan_id="plan-w3")

    assert agent.handle(newer) == []
    [superseded] = agent.handle(older)  # arrives later, from the older plan
    assert agent.handle(rival) == []  # the same revision from another plan: first one stays
    assert charger_of(agent).powers(T0) == [7.0]
    assert superseded.status == "failed" and superseded.work_id == item.work_id
    assert superseded.reason == "superseded by plan revision 2000 (plan plan-w2)"

    agent.handle(newer)  # delivered again: the same plan, applied again
    agent.handle(assignment("car-1", [], 5.0, revision=3_000, plan_id="plan-w1"))
    assert charger_of(agent).powers(T0) == [7.0, 7.0, 5.0]
    agent.handle(assignment("car-1", [], 4.0, slot=1, revision=1))  # each slot on its own
    assert charger_of(agent).powers(T0 + SLOT) == [4.0]


def test_work_queued_behind_a_newer_revision_fails_superseded(
    agent: VehicleAgent, make_item: MakeItem, write_npy: WriteNpy, features: np.ndarray
) -> None:
    item = make_item(input_uri=write_npy("x.npy", features))
    first = assignment("car-1", [item], 7.0, revision=1)
    admission = agent.apply_setpoint(first)  # its work waits while a newer plan comes
    agent.apply_setpoint(assignment("car-1", [], 3.0, revision=2))
    [result] = agent.run_work(first, admission)
    assert result.status == "failed"
    assert result.reason is not None and result.reason.startswith("superseded by plan revision 2")


# --- compute at reserve -----------------------------------------------------------------------


def test_compute_is_refused_at_reserve_and_every_item_is_reported(
    agent: VehicleAgent, make_item: MakeItem, write_npy: WriteNpy, features: np.ndarray
) -> None:
    items = [make_item(input_uri=write_npy(f"x{i}.npy", features)) for i in range(2)]
    # 1 min into the slot, 0.5 kW of compute can draw 0.5 * (14 min + 10 s) = 0.118 kWh more
    agent.observe(car("car-1", T0, energy_kwh=10.1, reserve_kwh=10.0))
    refused = agent.handle(assignment("car-1", items, 11.0))
    assert charger_of(agent).powers(T0) == [11.0]  # charging the owner's car goes on
    assert [(r.work_id, r.status) for r in refused] == [(i.work_id, "failed") for i in items]
    for result in refused:
        assert result.reason is not None and result.reason.startswith("battery at reserve")
        assert "10.100 kWh" in result.reason and "0.118 kWh" in result.reason

    agent.observe(car("car-1", T0 + timedelta(minutes=1), energy_kwh=10.2, reserve_kwh=10.0))
    again = [make_item(input_uri=write_npy("y.npy", features))]
    assert [r.status for r in agent.handle(assignment("car-1", again, 11.0))] == ["done"]


# --- runaway and hostile work -----------------------------------------------------------------


def test_a_node_that_ignores_terminate_is_killed_and_the_next_item_runs(
    runner: OnnxRunner, clock: SteppedClock, hostile: MakeHostile, features: np.ndarray
) -> None:
    limits = AgentLimits(kill_after_s=0.5)
    agent = VehicleAgent("car-1", runner, TimedCharger(), COMPUTE_KW, clock, limits=limits)
    long = hostile("long", long_node_model(), features)
    after = hostile("after", build_demo_model(), features)
    threading.Thread(
        target=lambda: (
            wait_until(lambda: agent.running == long.work_id, "the long item's start"),
            time.sleep(2.0),  # into the MatMul, a node that never looks at the terminate flag
            agent.stop("the car departed"),
            time.sleep(0.5),
            agent.resume(),
        ),
        daemon=True,
    ).start()
    started = time.monotonic()
    [killed] = agent.handle(assignment("car-1", [long], 7.0))
    assert time.monotonic() - started < 2.0 + PROMPTLY_S
    assert killed.status == "failed" and killed.progress_frac == 0.0
    assert killed.reason is not None
    assert killed.reason.startswith("stopped: the car departed (after 0 of 3 rows); killed")
    [done] = agent.handle(assignment("car-1", [after], 7.0))
    assert done.status == "done"


def test_a_memory_hungry_model_fails_and_the_pool_goes_on(
    runner: OnnxRunner, clock: SteppedClock, hostile: MakeHostile, features: np.ndarray
) -> None:
    limits = AgentLimits(memory_bytes=1024**3)  # the model asks for 4 GiB in one tensor
    pool = AgentPool(
        VehicleAgent(v, runner, TimedCharger(), COMPUTE_KW, clock, limits=limits)
        for v in ("car-1", "car-2")
    )
    hog = hostile("hog", memory_hog_model(), features)
    results = pool.handle_all(
        [
            assignment("car-1", [hog, hostile("next", build_demo_model(), features)], 7.0),
            assignment("car-2", [hostile("other", build_demo_model(), features)], 7.0),
        ]
    )
    assert [(r.vehicle_id, r.status) for r in results] == [
        ("car-1", "failed"),
        ("car-1", "done"),
        ("car-2", "done"),
    ]
    assert results[0].reason is not None
    assert results[0].reason.startswith("the run exceeded its memory bound of 1024 MiB")
    assert "Failed to allocate memory" in results[0].reason


def test_a_work_process_that_dies_mid_run_is_reported_and_replaced(
    agent: VehicleAgent, hostile: MakeHostile, features: np.ndarray
) -> None:
    rows = np.zeros((6, 4), np.float32)
    rows[5, 0] = FOREVER
    loop = hostile("loop", runaway_loop_model(), rows)

    def kill_its_process() -> None:
        wait_until(lambda: agent.running == loop.work_id, "the item's start")
        wait_until(lambda: bool(agent.sandboxes.pids["busy"]), "the busy process")
        time.sleep(0.5)
        os.kill(agent.sandboxes.pids["busy"][0], signal.SIGKILL)  # as the OOM killer would

    threading.Thread(target=kill_its_process, daemon=True).start()
    [died] = agent.handle(assignment("car-1", [loop], 7.0))
    assert died.status == "failed" and died.reason is not None
    assert died.reason.startswith("the work process died (signal SIGKILL")
    [done] = agent.handle(assignment("car-1", [hostile("x", build_demo_model(), features)], 7.0))
    assert done.status == "done"


def test_the_work_process_ends_when_the_agent_process_is_killed(
    tmp_path: Path, hostile: MakeHostile
) -> None:
    item = hostile("loop", runaway_loop_model(), np.full((2, 4), FOREVER, np.float32))
    script = tmp_path / "agent.py"
    script.write_text(
        "import sys, threading, time\n"
        "from executor.runtime import OnnxRunner\n"
        "from executor.roots import StorageRoots\n"
        "from executor.sandbox import Sandbox, WorkRequest\n"
        "from streams.messages import WorkItem\n"
        "item = WorkItem.model_validate_json(sys.argv[1])\n"
        "sandbox = Sandbox(OnnxRunner(intra_op_threads=1), None)\n"
        "request = WorkRequest(item, 'car-1', 2**20, 2**20, 0, StorageRoots.default())\n"
        "threading.Thread(target=sandbox.run, args=(request, lambda: None, 1.0)).start()\n"
        "time.sleep(1.0)\n"
        "print(sandbox.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    with subprocess.Popen(
        [sys.executable, str(script), item.model_dump_json()],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},  # this checkout, not the installed one
        stdout=subprocess.PIPE,
        text=True,
    ) as agent:
        assert agent.stdout is not None
        child = int(agent.stdout.readline())
        assert _alive(child)  # running the loop that never ends
        agent.kill()  # SIGKILL: no goodbye to the work process
        agent.wait()
    wait_until(lambda: not _alive(child), "the work process's exit", PROMPTLY_S)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a reparented one is reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# --- on the broker ----------------------------------------------------------------------------


def test_a_runaway_loop_is_stopped_at_lease_end_and_next_set_points_are_applied_on_time(
    kafka_settings: KafkaSettings,
    runner: OnnxRunner,
    hostile: MakeHostile,
    features: np.ndarray,
    tmp_path: Path,
) -> None:
    """The incident: a `Loop` of 10^15 iterations on car-a held its agent while the next
    slot's 7 kW (car-a) and 11 kW (car-b, same pool) set-points waited."""
    clock = SteppedClock(T0 + timedelta(minutes=1))
    chargers = {v: TimedCharger() for v in ("car-a", "car-b")}
    limits = AgentLimits(chunk_rows=2, lease_grace_s=10.0, kill_after_s=3.0)
    pool = AgentPool(
        VehicleAgent(v, runner, chargers[v], 0.3, clock, limits=limits) for v in chargers
    )
    rows = np.zeros((6, 4), np.float32)
    rows[4, 2] = FOREVER  # the third chunk of two rows never ends
    runaway = hostile("runaway", runaway_loop_model(), rows)
    after = hostile("after", build_demo_model(), features)
    factories.publish(kafka_settings, [car("car-a", T0), car("car-b", T0)])
    with Collected(kafka_settings) as results:
        service = AgentService(
            kafka_settings,
            pool,
            spool_dir=tmp_path / "spool",
            heartbeat_interval_s=0.5,
            clock=clock,
            trust=None,
        )
        service.start()
        try:
            factories.publish(
                kafka_settings,
                [
                    assignment("car-a", [runaway], 7.0, revision=1),
                    assignment("car-b", [], 3.0, revision=1),
                ],
            )
            car_a = pool.get("car-a")
            assert car_a is not None
            wait_until(lambda: car_a.running == runaway.work_id, "the runaway's start")
            time.sleep(1.0)  # well into the never-ending chunk

            published = time.monotonic()
            factories.publish(
                kafka_settings,
                [
                    assignment("car-a", [after], 7.0, slot=1, revision=2),
                    assignment("car-b", [], 11.0, slot=1, revision=3),
                    # a rebalance: the older plan's assignment arrives after the newer one
                    assignment("car-b", [], 3.0, slot=1, revision=2),
                ],
            )
            next_slot = T0 + SLOT
            wait_until(
                lambda: chargers["car-a"].powers(next_slot) and chargers["car-b"].powers(next_slot),
                "the next slot's set-points",
                PROMPTLY_S,
            )
            assert service.wait_caught_up()
            for charger in chargers.values():
                assert charger.calls[-1][2] - published < PROMPTLY_S
            assert car_a.running == runaway.work_id  # applied while the runaway still runs
            assert chargers["car-a"].powers(next_slot) == [7.0]
            assert chargers["car-b"].powers(next_slot) == [11.0]  # the older plan changed nothing

            clock.now = next_slot + timedelta(seconds=11)  # past the lease end + 10 s grace
            stepped = time.monotonic()
            stopped = results.wait_for(runaway.work_id)
            assert time.monotonic() - stepped < PROMPTLY_S
            assert stopped.status == "failed" and stopped.reason is not None
            assert stopped.reason.startswith(
                f"stopped: the lease ended at {next_slot.isoformat()} (+10 s grace) "
                "(after 4 of 6 rows)"
            )
            assert stopped.progress_frac == pytest.approx(4 / 6)
            assert results.wait_for(after.work_id).status == "done"
        finally:
            service.stop()


class Collected:
    """Results published on the topic, by work id."""

    def __init__(self, kafka: KafkaSettings) -> None:
        from streams.consumer import StreamReader

        self._results: dict[str, Result] = {}
        self._changed = threading.Condition()
        self._reader = StreamReader(kafka, None, [Stream.RESULTS], self._add, None)

    def _add(self, stream: Stream, message: object) -> None:
        assert isinstance(message, Result)
        with self._changed:
            self._results[message.work_id] = message
            self._changed.notify_all()

    def wait_for(self, work_id: str, timeout_s: float = 60.0) -> Result:
        with self._changed:
            assert self._changed.wait_for(lambda: work_id in self._results, timeout_s), work_id
            return self._results[work_id]

    def __enter__(self) -> Collected:
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.stop()


def test_a_report_dated_ahead_of_the_agents_clock_is_not_believed(
    runner: OnnxRunner, clock: SteppedClock
) -> None:
    agent = VehicleAgent("car-1", runner, TimedCharger(), COMPUTE_KW, clock, charger_kw=11.0)
    agent.observe(car("car-1", T0, charger_kw=11.0))
    forged = car("car-1", datetime(2099, 1, 1, tzinfo=UTC), charger_kw=0.5)
    agent.observe(forged)  # would clamp every set-point to 0.5 kW and pin the car
    assert agent.charger_limit_kw == 11.0
    agent.observe(car("car-1", T0 + timedelta(minutes=1), charger_kw=7.4))  # real ones count
    assert agent.charger_limit_kw == 7.4
