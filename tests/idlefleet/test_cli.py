"""The command line as a user runs it: separate processes, real broker, exit codes."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from streams.broker import broker_answers
from tests.optimizer.factories import one_car_three_slots

IDLEFLEET = [sys.executable, "-m", "idlefleet.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IDLEFLEET, *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("demo", "serve", "agent", "broker", "plan"):
        assert command in result.stdout


def test_broker_prints_its_address_and_stops_on_sigint() -> None:
    with subprocess.Popen(
        [*IDLEFLEET, "broker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            address = process.stdout.readline().strip()
            assert address.startswith("127.0.0.1:")
            assert broker_answers(address)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 0
            assert not broker_answers(address, timeout_s=0.5)
        finally:
            process.kill()


def test_a_bad_scenario_names_the_field_and_writes_nothing(tmp_path: Path) -> None:
    doc = one_car_three_slots()
    doc["vehicles"][0]["soc_kwh"] = 80.0
    scenario = tmp_path / "bad.json"
    scenario.write_text(json.dumps(doc))
    out = tmp_path / "plan.json"
    result = run("plan", str(scenario), "-o", str(out))
    assert result.returncode == 2
    assert "vehicles[0].soc_kwh" in result.stderr
    assert not out.exists()


def test_plan_writes_a_contract_plan(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(one_car_three_slots()))
    out = tmp_path / "plan.json"
    result = run("plan", str(scenario), "-o", str(out))
    assert result.returncode == 0, result.stderr
    plan = json.loads(out.read_text())
    assert plan["status"] == "optimal"
    # 10 kWh are owed; the cleanest slot (100 g/kWh) takes the charger's full 11 kW.
    assert plan["vehicles"]["car"]["charge_kw"][1] > 9.9


def test_serve_starts_its_own_broker_and_stops_on_sigterm() -> None:
    with subprocess.Popen(
        [*IDLEFLEET, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stderr is not None
            assert process.stderr.readline().startswith("serving on 127.0.0.1:")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            process.kill()


def test_bench_runs_a_named_benchmark_and_prints_its_ratio() -> None:
    result = run("bench", "serde", "--messages", "200")
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("decode_msgs_per_s=") and " ratio=" in last


def test_an_agent_without_the_fleet_authority_or_a_broker_refuses_to_start(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDLEFLEET_")}
    env["IDLEFLEET_STATE_DIR"] = str(tmp_path)
    no_key = subprocess.run(
        [*IDLEFLEET, "agent", "--vehicle-id", "car-1", "--bootstrap-servers", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert no_key.returncode == 2 and "--authority-public-key" in no_key.stderr
    assert not list(tmp_path.iterdir())  # no key made for a car that cannot start
    no_broker = subprocess.run(
        [*IDLEFLEET, "agent", "--vehicle-id", "car-1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "IDLEFLEET_AUTHORITY_PUBLIC_KEY": "ab" * 32},
    )
    assert no_broker.returncode == 2 and "--bootstrap-servers" in no_broker.stderr


def test_a_demo_that_cannot_be_built_exits_2_with_the_reason() -> None:
    too_many_sites = run("demo", "--sites", "9", "--quiet")
    assert too_many_sites.returncode == 2 and "--sites must be 1..6" in too_many_sites.stderr
    too_short = run("demo", "--hours", "0.25", "--quiet")
    assert too_short.returncode == 2 and "make it longer" in too_short.stderr


def test_only_kafkas_slow_step_warning_is_dropped() -> None:
    from idlefleet.cli import SlowNetworkStepFilter

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord(
            "kafka.net.selector", logging.WARNING, __file__, 1, message, (), None
        )

    quiet = SlowNetworkStepFilter()
    slow = "Task <t> ran for 0.148s (>0.100s threshold). It is blocking the event loop -- likely"
    assert not quiet.filter(record(slow))
    assert quiet.filter(record("Error reading wakeup socket: boom. Rebuilding."))
