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

from idlefleet.planner_process import PlannerProcess
from optimizer import load_scenario, plan_scenario
from optimizer.errors import SolveError
from tests.idlefleet.test_cli import scenario_doc


@pytest.fixture
def planner() -> Iterator[PlannerProcess]:
    process = PlannerProcess()
    yield process
    process.close()


def test_the_child_plans_as_the_service_would_in_process(planner: PlannerProcess) -> None:
    document = scenario_doc()
    scenario, plan = planner.plan(document, "milp", deadline_s=120, time_limit_s=10)
    expected = plan_scenario(load_scenario(document), "milp", time_limit_s=10)
    assert scenario == load_scenario(document)
    assert plan.status == expected.status
    assert plan.objective == pytest.approx(expected.objective)
    assert plan.vehicles["car"].charge_kw == pytest.approx(expected.vehicles["car"].charge_kw)


def test_a_child_killed_between_plans_is_replaced(planner: PlannerProcess) -> None:
    planner.plan(scenario_doc(), "immediate", deadline_s=120)
    first = planner._process
    assert first is not None and first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    first.join(10)
    _, plan = planner.plan(scenario_doc(), "immediate", deadline_s=120)
    assert plan.is_feasible
    assert planner._process is not None and planner._process.pid != first.pid


def test_a_plan_past_its_deadline_fails_and_the_next_one_gets_a_fresh_child(
    planner: PlannerProcess,
) -> None:
    # The first plan starts the child (imports take seconds): a tiny deadline expires.
    with pytest.raises(SolveError, match="did not answer in 0 s"):
        planner.plan(scenario_doc(), "milp", deadline_s=0.01)
    assert planner._process is None
    _, plan = planner.plan(scenario_doc(), "milp", deadline_s=120)
    assert plan.is_feasible


def test_a_bad_document_raises_with_the_childs_reason(planner: PlannerProcess) -> None:
    document = scenario_doc()
    document["sites"] = []
    with pytest.raises(RuntimeError, match="planner process failed") as raised:
        planner.plan(document, "milp", deadline_s=120)
    assert "site" in str(raised.value)
    _, plan = planner.plan(scenario_doc(), "milp", deadline_s=120)  # the child lives on
    assert plan.is_feasible


PARENT = """
import sys
from idlefleet.planner_process import PlannerProcess
from tests.idlefleet.test_cli import scenario_doc
planner = PlannerProcess()
planner.plan(scenario_doc(), "immediate", deadline_s=120)
print(planner._process.pid, flush=True)
sys.stdin.read()
"""


def test_the_child_exits_when_its_parent_is_killed() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    ) as parent:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        parent.kill()
        parent.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited and waiting for its reaper, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
