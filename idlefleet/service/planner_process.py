"""The service's solver in a child process of its own.

Loading a scenario, building the Pyomo model and reading the plan back are pure Python and
take seconds for thousands of cars; in the service's process they would hold its GIL
against the stream readers and the gRPC threads while every plan is made. The child does
that work: the service sends it a scenario-v1 document and gets back the loaded scenario
and the checked plan. The API's what-ifs and DR decisions run in a child of their own the
same way (`call` runs any module-level function there).

One child, started on the first plan and kept for the next ones (starting one costs the
imports of Pyomo and pvlib, a few seconds). A child that dies, or takes longer than
`deadline_s`, is killed and replaced, and the plan fails with `SolveError`, so the service
falls back to its `immediate` plan: a solver that hangs cannot stop dispatch. The child
exits when its parent does (it watches its parent's pid), and kills its own workers, so a
service killed with SIGKILL, even mid-plan, leaves no solver behind.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.util import Finalize
from typing import Any, TypeVar

from optimizer import Plan, Scenario, load_scenario, plan_scenario
from optimizer.errors import SolveError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How often the child looks whether its parent is still there [s].
PARENT_CHECK_S = 1.0
#: Time allowed for a stop's goodbye before the child is killed [s].
STOP_GRACE_S = 5.0


def _serve(conn: Connection, parent_pid: int) -> None:
    """The child: plan each request `conn` brings until None or the parent is gone."""

    def watch_parent() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                for worker in multiprocessing.active_children():  # the decomposition's
                    worker.kill()
                os._exit(0)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        function, args = request
        try:
            conn.send(("result", function(*args)))
        except SolveError as exc:
            conn.send(("solve-error", str(exc)))
        except Exception:  # anything else is a defect: the parent raises it with the trace
            conn.send(("error", traceback.format_exc()))


def _plan_document(
    document: dict[str, Any], strategy: str, options: dict[str, Any]
) -> tuple[Scenario, Plan]:
    scenario = load_scenario(document)
    return scenario, plan_scenario(scenario, strategy, **options)


class PlannerProcess:
    """Plans (and runs other solves) in one long-lived child process, one at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._stopper: Finalize | None = None

    def plan(
        self, document: dict[str, Any], strategy: str, deadline_s: float, **options: Any
    ) -> tuple[Scenario, Plan]:
        """The loaded scenario and `plan_scenario(scenario, strategy, **options)`, as `call`."""
        return self.call(_plan_document, (document, strategy, options), deadline_s)

    def call(self, function: Callable[..., T], args: tuple[Any, ...], deadline_s: float) -> T:
        """`function(*args)` in the child; `function` a module-level one (sent by name).

        Raises `SolveError` when the solver fails, or when the child dies or has not
        answered within `deadline_s` [s] (it is then replaced); `RuntimeError` with the
        child's trace for any other error there (a bad document, a plan breaking the
        contract).
        """
        with self._lock:
            conn = self._connection()
            try:
                conn.send((function, args))
                if not conn.poll(deadline_s):
                    raise SolveError(f"the planner process did not answer in {deadline_s:.0f} s")
                kind, answer = conn.recv()
            except (EOFError, OSError, SolveError) as exc:
                self._stop(grace_s=0.0)
                if isinstance(exc, SolveError):
                    raise
                raise SolveError(f"the planner process died: {exc!r}") from exc
        if kind == "solve-error":
            raise SolveError(answer)
        if kind == "error":
            raise RuntimeError(f"the planner process failed:\n{answer}")
        return answer

    def start(self) -> PlannerProcess:
        """Start the child now rather than at the first call."""
        with self._lock:
            self._connection()
        return self

    def close(self) -> None:
        """Ask the child to exit; kill it if it has not within STOP_GRACE_S."""
        with self._lock:
            self._stop(grace_s=STOP_GRACE_S)

    def _connection(self) -> Connection:
        if self._process is None or self._conn is None or not self._process.is_alive():
            self._stop(grace_s=0.0)
            spawn = multiprocessing.get_context("spawn")
            parent, child = spawn.Pipe()
            # Not a daemon: the decomposition starts processes of its own.
            process = spawn.Process(
                target=_serve, args=(child, os.getpid()), name="idlefleet-planner"
            )
            process.start()
            child.close()
            self._process, self._conn = process, parent
            # Stopped before multiprocessing joins its children at exit, which would wait
            # for a child that waits for its next request.
            self._stopper = Finalize(
                self, _stop_child, (process, parent, STOP_GRACE_S), exitpriority=10
            )
            log.info("planner process %d started", process.pid)
        return self._conn

    def _stop(self, grace_s: float) -> None:
        if self._stopper is not None:
            self._stopper.cancel()
        if self._process is not None and self._conn is not None:
            _stop_child(self._process, self._conn, grace_s)
        self._process, self._conn, self._stopper = None, None, None


def _stop_child(process: BaseProcess, conn: Connection, grace_s: float) -> None:
    """Say goodbye to the child, wait up to `grace_s` [s] for it, then kill it."""
    with contextlib.suppress(OSError):
        conn.send(None)
    process.join(grace_s)
    if process.is_alive():
        process.kill()
        process.join()
    conn.close()
