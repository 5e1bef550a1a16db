"""The API's solves (what-ifs, DR decisions) in one child process, queued one at a time.

A solve runs only while it holds the solver's turn, so two never run at once and none runs
in the API's process; at most `max_waiting` calls wait for the turn, one more is BusyError.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from idlefleet.queries.errors import BusyError, OutOfTimeError
from idlefleet.service.planner_process import PlannerProcess

T = TypeVar("T")

#: Share of the call's remaining time it may wait for the turn.
WAIT_SHARE = 0.5
#: Share of the call's remaining time the child may take to answer; later, it is replaced
#: and the call fails, so that a hung solve frees the turn before its caller gives up.
ANSWER_SHARE = 0.9


class Turn:
    """The solver child, held by one caller; the call's time left is counted from `ends`."""

    def __init__(self, process: PlannerProcess, ends: float | None) -> None:
        self._process = process
        self._ends = ends

    def time_left_s(self) -> float | None:
        """What is left of the call's deadline [s]; None without one."""
        return None if self._ends is None else self._ends - time.monotonic()

    def call(self, function: Callable[..., T], args: tuple[Any, ...], budget_s: float) -> T:
        """`function(*args)` in the child, answered within `budget_s` [s] and the deadline."""
        left_s = self.time_left_s()
        deadline_s = budget_s if left_s is None else min(budget_s, left_s * ANSWER_SHARE)
        return self._process.call(function, args, deadline_s)


class ApiSolver:
    """One solver child; `turn` queues a caller for it."""

    def __init__(self, max_waiting: int = 4) -> None:
        self.max_waiting = max_waiting
        self._process = PlannerProcess()
        self._turn = threading.Lock()
        self._counting = threading.Lock()
        self._callers = 0

    def start(self) -> ApiSolver:
        """Start the child now (a few seconds of imports) rather than at the first solve."""
        self._process.start()
        return self

    def close(self) -> None:
        self._process.close()

    @property
    def callers(self) -> int:
        """Calls holding the solver or waiting for it."""
        return self._callers

    @contextmanager
    def turn(self, time_left_s: float | None) -> Iterator[Turn]:
        """The child, once no other solve holds it, for a call with `time_left_s` [s] (None:
        no deadline). BusyError when `max_waiting` calls wait already; OutOfTimeError when
        the turn did not come within WAIT_SHARE of the time left."""
        with self._counting:
            if self._callers > self.max_waiting:
                raise BusyError(f"{self.max_waiting} solves are waiting already; try again later")
            self._callers += 1
        try:
            ends = None if time_left_s is None else time.monotonic() + time_left_s
            wait_s = (
                threading.TIMEOUT_MAX  # a gRPC call without a deadline has ~1e20 s left
                if time_left_s is None
                else min(max(time_left_s * WAIT_SHARE, 0.0), threading.TIMEOUT_MAX)
            )
            if not self._turn.acquire(timeout=wait_s):
                raise OutOfTimeError(f"the solver stayed busy for the {wait_s:.2f} s there was")
            try:
                yield Turn(self._process, ends)
            finally:
                self._turn.release()
        finally:
            with self._counting:
                self._callers -= 1
