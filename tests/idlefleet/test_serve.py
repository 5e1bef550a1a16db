"""`idlefleet serve` as a new user runs it: a fresh clone, no grid data for today, maybe a live
feed: it plans on the labelled fallback at once, on the feed once it answers, and its clock
runs as fast as asked."""

from __future__ import annotations

import itertools
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from idlefleet.cli import main
from idlefleet.commands import EXIT_BAD_INPUT
from idlefleet.commands.serve import tick_every_slot
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.sim.clock import ScaledClock
from tests.idlefleet.gridfeeds.feed_server import (
    API_KEY,
    Answer,
    FeedServer,
    electricitymaps_doc,
    json_answer,
)

IDLEFLEET = [sys.executable, "-m", "idlefleet.cli"]


@pytest.mark.parametrize("speed", ["0", "-2", "nan", "inf"])
def test_a_clock_speed_that_is_not_a_finite_positive_number_is_refused(
    speed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", f"--clock-speed={speed}"]) == EXIT_BAD_INPUT
    assert "--clock-speed must be a finite number above 0" in capsys.readouterr().err


def test_slot_ticks_come_as_many_times_faster_as_the_clock_runs() -> None:
    """At 3600x a 15-minute slot lasts 0.25 s of wall time."""
    wall_s = time.time()
    clock = ScaledClock(datetime.fromtimestamp(wall_s, UTC), wall_s, 3600.0)
    ticks: list[tuple[datetime, datetime]] = []
    stop = threading.Event()

    def tick(boundary: datetime) -> None:
        ticks.append((boundary, clock()))
        if len(ticks) == 6:
            stop.set()

    started = time.monotonic()
    tick_every_slot(tick, 15, stop, clock)  # type: ignore[arg-type]
    elapsed_s = time.monotonic() - started
    boundaries = [boundary for boundary, _ in ticks]
    slot = timedelta(minutes=15)
    assert all(b.minute % 15 == 0 and b.second == 0 for b in boundaries)
    assert [later - earlier for earlier, later in itertools.pairwise(boundaries)] == [slot] * 5
    assert all(boundary <= seen < boundary + slot for boundary, seen in ticks[1:])
    assert 0.9 < elapsed_s < 1.6  # five waits of at most 0.25 s, the first one shorter


class Lines:
    """A process's stderr, line by line, read in a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        assert process.stderr is not None
        stream = process.stderr
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Iterator[str]) -> None:
        for line in stream:
            self._queue.put(line)

    def until(
        self, *parts: str, after: int = 0, timeout_s: float = 60.0, absent: str | None = None
    ) -> int:
        """The index of the first line from `after` on holding every part (and not
        `absent`); threads print in any order, so lines seen before count too."""

        def fits(line: str) -> bool:
            return all(part in line for part in parts) and (absent is None or absent not in line)

        deadline = time.monotonic() + timeout_s
        index = after
        while True:
            while index < len(self.seen):
                if fits(self.seen[index]):
                    return index
                index += 1
            try:
                self.seen.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no line with {parts}; seen:\n{''.join(self.seen)}") from None


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


def test_a_fresh_serve_plans_on_the_fallback_then_on_the_live_feed(
    tmp_path: Path, feed: FeedServer
) -> None:
    feed.default = Answer(503, b"maintenance")
    viewer = secrets.token_urlsafe(16)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{viewer} viewer tester\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDLEFLEET_")}
    env.update(
        IDLEFLEET_STATE_DIR=str(tmp_path / "state"),
        IDLEFLEET_ELECTRICITYMAPS_URL=feed.url,
        IDLEFLEET_ELECTRICITYMAPS_API_KEY=API_KEY,
        IDLEFLEET_ELECTRICITYMAPS_RETRY_S="0.5",
        IDLEFLEET_ELECTRICITYMAPS_MAX_BACKOFF_S="1",
    )
    command = [*IDLEFLEET, "serve", "--clock-speed", "600", "--grpc-port", "0"]
    with subprocess.Popen(
        [*command, "--tokens", str(tokens)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            lines = Lines(process)
            lines.until("serving on 127.0.0.1:")
            lines.until("clock: 600x the wall clock, from ")
            lines.until("grid intensity: live feeds electricitymaps (DE: DE), electricitymaps (GB")
            lines.until("grid feed electricitymaps for DE unavailable: ", "HTTP 503")
            lines.until("planning on fallback intensity for DE: no published signal covers")
            lines.until("plan at ", "on FALLBACK intensity for DE, GB")
            port = int(lines.seen[lines.until("gRPC API on port ")].split()[-1])
            lines.until("API serving, degraded: planning on fallback intensity for DE")
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
                assert health.status == health_pb2.HealthCheckResponse.SERVING
                view = plan_when_published(channel, viewer)
                assert view.plan.slots == 96 and view.plan.slot_minutes == 15
                # every plan says where its intensity came from
                assert view.plan.intensity_sources["DE"].startswith("fallback: DE 2020")
            # The feed answers: its signal replaces the fallback at the next plan.
            answering = len(lines.seen)
            now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            feed.default = json_answer(electricitymaps_doc(now, hours=48))
            lines.until("grid feed electricitymaps for DE is back after", after=answering)
            back = lines.until("DE: planning on live electricitymaps forecast", after=answering)
            assert "now, no longer on the fallback" in lines.seen[back]
            lines.until("plan at ", "grid-signal", after=answering, absent="FALLBACK")
            once = [line for line in lines.seen if "for DE unavailable" in line]
            assert len(once) == 1, once  # the outage was logged once
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            process.kill()


def plan_when_published(channel: grpc.Channel, token: str, within_s: float = 15.0) -> pb.PlanView:
    """GetPlan once the API has the plan the service logged: its board takes up a new plan
    within a poll of the service (FAILED_PRECONDITION "no plan yet" until then)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return pb_grpc.FleetPlannerStub(channel).GetPlan(
                pb.GetPlanRequest(), metadata=(("authorization", f"Bearer {token}"),)
            )
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.FAILED_PRECONDITION or (
                time.monotonic() > deadline
            ):
                raise
            time.sleep(0.1)
