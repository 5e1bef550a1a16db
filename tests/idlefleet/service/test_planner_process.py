"""The service's solver child: same plans as in-process, replaced when it dies or hangs,
gone when its parent is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from idlefleet.service.planner_process import PlannerProcess
from optimizer import load_scenario, plan_scenario
from optimizer.errors import SolveError
from tests.optimizer.factories import one_car_three_slots


@pytest.fixture
def planner() -> Iterator[PlannerProcess]:
    process = PlannerProcess()
    yield process
    process.close()


def test_the_child_plans_as_the_service_would_in_process(planner: PlannerProcess) -> None:
    document = one_car_three_slots()
    scenario, plan = planner.plan(document, "milp", deadline_s=120, time_limit_s=10)
    expected = plan_scenario(load_scenario(document), "milp", time_limit_s=10)
    assert scenario == load_scenario(document)
    assert plan.status == expected.status
    assert plan.objective == pytest.approx(expected.objective)
    assert plan.vehicles["car"].charge_kw == pytest.approx(expected.vehicles["car"].charge_kw)


def test_a_child_killed_between_plans_is_replaced(planner: PlannerProcess) -> None:
    planner.plan(one_car_three_slots(), "immediate", deadline_s=120)
    first = planner._process
    assert first is not None and first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    first.join(10)
    _, plan = planner.plan(one_car_three_slots(), "immediate", deadline_s=120)
    assert plan.is_feasible
    assert planner._process is not None and planner._process.pid != first.pid


def test_a_plan_past_its_deadline_fails_and_the_next_one_gets_a_fresh_child(
    planner: PlannerProcess,
) -> None:
    # The first plan starts the child (imports take seconds): a tiny deadline expires.
    with pytest.raises(SolveError, match="did not answer in 0 s"):
        planner.plan(one_car_three_slots(), "milp", deadline_s=0.01)
    assert planner._process is None
    _, plan = planner.plan(one_car_three_slots(), "milp", deadline_s=120)
    assert plan.is_feasible


def test_a_bad_document_raises_with_the_childs_reason(planner: PlannerProcess) -> None:
    document = one_car_three_slots()
    document["sites"] = []
    with pytest.raises(RuntimeError, match="planner process failed") as raised:
        planner.plan(document, "milp", deadline_s=120)
    assert "site" in str(raised.value)
    _, plan = planner.plan(one_car_three_slots(), "milp", deadline_s=120)  # the child lives on
    assert plan.is_feasible


PARENT = """
import sys, threading
from idlefleet.service.planner_process import PlannerProcess
from tests.optimizer.factories import fleet, one_car_three_slots
planner = PlannerProcess()
planner.plan(one_car_three_slots(), "immediate", deadline_s=120)
print(planner._process.pid, flush=True)
if sys.argv[1] == "mid-plan":  # large enough for the decomposition's worker processes
    document = fleet(n_vehicles=1200, n_slots=96, n_jobs=0, n_sites=12)
    threading.Thread(target=planner.plan, args=(document, "milp", 600), daemon=True).start()
sys.stdin.read()
"""


@pytest.mark.parametrize("when", ["idle", "mid-plan"])
def test_the_child_and_its_workers_exit_when_its_parent_is_killed(when: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT, when],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    ) as parent:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        workers: set[int] = set()
        deadline = time.monotonic() + 60
        while when == "mid-plan" and not workers and time.monotonic() < deadline:
            workers = _children(child_pid)
            time.sleep(0.1)
        assert when == "idle" or workers, "the decomposition started no workers"
        parent.kill()
        parent.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in {child_pid, *workers}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in {child_pid, *workers})


def _children(pid: int) -> set[int]:
    """Live processes whose parent is `pid`."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _alive(int(entry)) and _stat(int(entry))[1] == str(pid):
            found.add(int(entry))
    return found


def _stat(pid: int) -> list[str]:
    """State and parent pid of `pid` (fields 3 and 4 of /proc/PID/stat); [] when gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[:2]
    except (FileNotFoundError, ProcessLookupError):
        return []


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited and waiting for its reaper, does not)."""
    state = _stat(pid)
    return bool(state) and state[0] != "Z"
