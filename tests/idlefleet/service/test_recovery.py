"""Planner services as real processes on the real broker: killed with SIGKILL and restarted, and
two workers in one consumer group sharing the fleet, one taking over when the other dies.

Each worker is `worker_main` below in a subprocess, driven line by line over stdin/stdout:
`status` answers the worker's ServiceStatus once it has read everything published so far,
`tick ISO-TIME` plans and dispatches that slot.
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from idlefleet.service.planner import PlannerService, ServiceStatus
from idlefleet.settings import PlannerSettings
from idlefleet.sites import load_sites
from optimizer import format_timestamp
from streams.clients import KafkaSettings
from streams.topics import STREAM_SPECS, Stream
from tests.idlefleet.service.factories import (
    SLOT,
    T0,
    done,
    forecast,
    parked,
    short_job,
    work_assigned,
    write_sites,
)
from tests.streams.factories import publish

REPO = Path(__file__).parents[3]


# -- the worker process -----------------------------------------------------------------
def status_document(status: ServiceStatus) -> dict[str, Any]:
    return {
        "owned_sites": list(status.owned_sites),
        "vehicles": {vid: t.model_dump(mode="json") for vid, t in status.vehicles.items()},
        "known_jobs": list(status.known_jobs),
        "accepted": {job: [list(pair) for pair in pairs] for job, pairs in status.accepted.items()},
        "results_accepted": status.results_accepted,
        "results_refused": status.results_refused,
        "results_unmatched": status.results_unmatched,
        "dead_letters": status.dead_letters,
    }


def worker_main() -> None:
    """argv: bootstrap servers, topic prefix, group id, sites file."""
    bootstrap, prefix, group, sites_path = sys.argv[1:5]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    service = PlannerService(
        KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix),
        PlannerSettings(group_id=group, horizon_hours=2, solver_time_limit_s=10),
        load_sites(Path(sites_path)),
        trust=None,
    ).start()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "status":
            # A worker replacing a killed one joins the group once the dead member's
            # session ends; on a loaded machine that can take a while.
            caught_up = service.catch_up(timeout_s=60)
            reply = {**status_document(service.status()), "caught_up": caught_up}
        else:
            report = service.tick(datetime.fromisoformat(argument))
            reply = {"assignments": report.assignments, "work_items": report.work_items}
        print(json.dumps(reply), flush=True)
    service.stop()


class Worker:
    """A planner service in a subprocess."""

    def __init__(self, kafka: KafkaSettings, group: str, sites: Path, log: Path) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from tests.idlefleet.service.test_recovery import worker_main; worker_main()",
                kafka.bootstrap_servers,
                kafka.topic_prefix,
                group,
                str(sites),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self._lines.put(line)

    def reply(self, timeout_s: float = 90) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = json.loads(self._lines.get(timeout=timeout_s))
        except queue.Empty:
            raise AssertionError(f"worker silent; see {self._log.name}") from None
        return answer

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.reply()

    def status_until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.ask("status")
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"worker never reached the state; last: {status}")
            time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit, no leaving the group."""
        self.process.kill()
        self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self._log.close()


# -- the scenario -----------------------------------------------------------------------
def sites_on_both_halves() -> tuple[str, str]:
    """Two site ids on telemetry partitions 0-2 and 3-5: the range assignor gives each half
    of six partitions to one of two members."""
    partitions = STREAM_SPECS[Stream.TELEMETRY].partitions
    names = [f"depot-{index}" for index in range(100)]
    low = next(n for n in names if zlib.crc32(n.encode()) % partitions < partitions // 2)
    high = next(n for n in names if zlib.crc32(n.encode()) % partitions >= partitions // 2)
    return low, high


# -- the tests --------------------------------------------------------------------------
def test_a_killed_service_comes_back_with_its_state_and_loses_no_job(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    sites = write_sites(tmp_path, ["depot-a"])
    cars = [parked(f"car-{index}", "depot-a") for index in range(3)]
    publish(kafka_settings, [forecast(), *cars, short_job("embed", 6)])

    first = Worker(kafka_settings, "planner", sites, tmp_path / "first.log")
    try:
        assert first.reply()["ready"]
        first.status_until(lambda s: len(s["vehicles"]) == 3 and s["known_jobs"] == ["embed"])
        assert first.ask(f"tick {format_timestamp(T0)}") == {"assignments": 3, "work_items": 3}
        work = work_assigned(kafka_settings, T0)
        publish(kafka_settings, [done(*pair) for pair in work[:2]])
        before = first.status_until(lambda s: s["results_accepted"] == 2)
        first.kill()
    finally:
        first.close()

    second = Worker(kafka_settings, "planner", sites, tmp_path / "second.log")
    try:
        assert second.reply()["ready"]
        after = second.ask("status")
        assert after["caught_up"], "the new worker did not read the streams in 60 s"
        for key in ("vehicles", "known_jobs", "accepted", "results_accepted", "owned_sites"):
            assert after[key] == before[key], key
        # In flight at the kill: its result still counts; a duplicate changes nothing.
        publish(kafka_settings, [done(*work[2]), done(*work[0])])
        final = second.status_until(lambda s: s["results_accepted"] == 3)
        assert sorted(map(tuple, final["accepted"]["embed"])) == sorted(
            (item.shard_index, assignment.vehicle_id) for assignment, item in work
        )
        assert final["results_refused"] == 0 and final["results_unmatched"] == 0
        # Nothing is redone: the next slot runs the other three shards.
        assert second.ask(f"tick {format_timestamp(T0 + SLOT)}") == {
            "assignments": 3,
            "work_items": 3,
        }
        later = work_assigned(kafka_settings, T0 + SLOT)
        assert sorted(item.shard_index for _, item in later) == [3, 4, 5]
    finally:
        second.close()


def test_two_workers_share_the_sites_and_one_takes_over_from_a_killed_one(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    site_a, site_b = sites_on_both_halves()
    sites = write_sites(tmp_path, [site_a, site_b])
    cars = {"a1": site_a, "a2": site_a, "b1": site_b, "b2": site_b}
    publish(
        kafka_settings,
        [
            forecast(),
            *(parked(car, site) for car, site in cars.items()),
            short_job("job-a", 4, [site_a]),
            short_job("job-b", 4, [site_b]),
        ],
    )
    workers = [Worker(kafka_settings, "fleet", sites, tmp_path / f"w{n}.log") for n in (1, 2)]
    try:
        for worker in workers:
            assert worker.reply()["ready"]
        deadline = time.monotonic() + 60
        while True:
            statuses = [worker.ask("status") for worker in workers]
            owned = [set(status["owned_sites"]) for status in statuses]
            if sorted(map(sorted, owned)) == sorted([[site_a], [site_b]]):
                break
            assert time.monotonic() < deadline, f"the sites were never split: {owned}"
            time.sleep(0.5)
        owner_a, owner_b = workers if owned[0] == {site_a} else workers[::-1]
        assert set(owner_a.ask("status")["vehicles"]) == {"a1", "a2"}

        assert owner_a.ask(f"tick {format_timestamp(T0)}") == {"assignments": 2, "work_items": 2}
        assert owner_b.ask(f"tick {format_timestamp(T0)}") == {"assignments": 2, "work_items": 2}
        work = work_assigned(kafka_settings, T0)
        jobs_by_car = {assignment.vehicle_id: item.job_id for assignment, item in work}
        assert jobs_by_car == {"a1": "job-a", "a2": "job-a", "b1": "job-b", "b2": "job-b"}
        work_a = [pair for pair in work if pair[1].job_id == "job-a"]

        publish(kafka_settings, [done(*work_a[0])])
        owner_a.status_until(lambda s: s["results_accepted"] == 1)
        owner_a.kill()
        publish(kafka_settings, [done(*work_a[1])])  # in flight when its worker died

        # The survivor owns both sites, has replayed the taken-over partition's cars (a read
        # from the earliest offset that may end after the results are in) and their results.
        taken_over = owner_b.status_until(
            lambda s: (
                set(s["owned_sites"]) == {site_a, site_b}
                and s["results_accepted"] == 2
                and set(s["vehicles"]) == set(cars)
            )
        )
        assert sorted(map(tuple, taken_over["accepted"]["job-a"])) == sorted(
            (item.shard_index, assignment.vehicle_id) for assignment, item in work_a
        )
        # The survivor plans every car and runs the rest of both jobs, redoing nothing.
        assert owner_b.ask(f"tick {format_timestamp(T0 + SLOT)}") == {
            "assignments": 4,
            "work_items": 4,
        }
        later = work_assigned(kafka_settings, T0 + SLOT)
        assert sorted((item.job_id, item.shard_index) for _, item in later) == [
            ("job-a", 2),
            ("job-a", 3),
            ("job-b", 2),
            ("job-b", 3),
        ]
    finally:
        for worker in workers:
            worker.close()
