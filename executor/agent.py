"""The car's agent: apply an assignment's charge power, run its work, report results.

`VehicleAgent.handle` never raises for a bad work item: each one ends in a `Result`, "done"
with the output's URI and sha256 or "failed" with a one-line reason, and the next item
still runs. `VehicleAgent.stop` (the car departs or is unplugged, consent is withdrawn, the
agent shuts down) ends the running item within moments: it fails with the share of its rows
done (`progress_frac`), and later items fail without running until `resume`. A work item
delivered twice runs once. `AgentPool` holds many agents in one process for simulated fleets.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from executor.errors import ExecutionError, StoppedError, one_line
from executor.runtime import Interrupt, OnnxRunner
from executor.signing import verify
from executor.storage import VerifiedModels, load_input_array, write_output_array
from streams.messages import Assignment, Result, WorkItem

logger = logging.getLogger(__name__)

SECONDS_PER_HOUR = 3600.0


class ChargerControl(Protocol):
    """The car's charger (hardware or simulator): holds a power over a slot."""

    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        """Charge at `power_kw` [kW] (grid side) over [slot_start, slot_end), UTC."""
        ...


class LoggedCharger:
    """The charger link of a car without a charger driver: logs each set point it is given.

    A real car plugs its charger control (e.g. an OCPP client) in here instead.
    """

    def __init__(self, vehicle_id: str) -> None:
        self._log = logging.getLogger(f"{__name__}.charger.{vehicle_id}")

    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        self._log.info("charge at %.2f kW from %s to %s", power_kw, slot_start, slot_end)


@dataclass(frozen=True)
class AgentLimits:
    """Largest files an agent reads [bytes]; rows fed per inference call [count] (0: all),
    which bounds how long a stop waits; how many handled work ids it remembers [count]."""

    max_model_bytes: int = 512 * 1024 * 1024
    max_input_bytes: int = 256 * 1024 * 1024
    chunk_rows: int = 256
    remembered_work: int = 100_000


class VehicleAgent:
    """Runs one vehicle's assignments.

    `compute_kw` [kW] is the battery power drawn while computing; a result's energy is
    `energy_kwh = compute_kw * runtime_s / 3600`, where `runtime_s` [s] is the item's wall
    time (reading and verifying, inference, writing), failed items included. `clock` returns
    the current time, UTC and timezone-aware.
    """

    def __init__(
        self,
        vehicle_id: str,
        runner: OnnxRunner,
        charger: ChargerControl,
        compute_kw: float,
        clock: Callable[[], datetime],
        *,
        limits: AgentLimits | None = None,
        timer: Callable[[], float] = time.perf_counter,
        fleet_key: bytes | None = None,
    ) -> None:
        if not math.isfinite(compute_kw) or compute_kw < 0:
            raise ValueError(f"compute_kw must be finite and non-negative, got {compute_kw}")
        if clock().tzinfo is None:
            raise ValueError("clock must return timezone-aware datetimes")
        self.vehicle_id = vehicle_id
        self.runner = runner
        self.charger = charger
        self.compute_kw = compute_kw
        self.limits = limits or AgentLimits()
        self.models = VerifiedModels()
        self._fleet_key = fleet_key
        self._clock = clock
        self._timer = timer
        self._interrupt = Interrupt()
        self._handling = threading.Lock()
        self._handled: OrderedDict[str, None] = OrderedDict()  # work ids, oldest first
        self.running: str | None = None  # work id of the item running now

    @property
    def stopped_reason(self) -> str | None:
        """Why the agent is stopped, or None while it takes work."""
        return self._interrupt.reason

    def stop(self, reason: str) -> None:
        """End the running item now and refuse work until `resume` (thread-safe)."""
        if self._interrupt.reason is None:
            logger.info("agent %s stops: %s", self.vehicle_id, reason)
        self._interrupt.fire(reason)

    def resume(self) -> None:
        """Take work again (the car is back, plugged in and participating)."""
        if self._interrupt.fired:
            logger.info("agent %s resumes", self.vehicle_id)
            self._interrupt = Interrupt()

    def handle(self, assignment: Assignment) -> list[Result]:
        """Apply the slot's charge power, then run every work item; one Result per item.

        An assignment for another vehicle is refused (logged, no results); with a fleet key,
        an unsigned or tampered one is refused without charging and its items fail. Items that
        cannot start before the slot (the lease) ends fail without running, as do all items
        when the charger refuses the slot's power or the agent is stopped. Items this agent
        already handled (a duplicate delivery) are skipped: they yield no second result.
        """
        with self._handling:
            return self._handle(assignment)

    def _handle(self, assignment: Assignment) -> list[Result]:
        if assignment.vehicle_id != self.vehicle_id:
            logger.warning(
                "agent %s refuses assignment %s addressed to %s",
                self.vehicle_id,
                assignment.assignment_id,
                assignment.vehicle_id,
            )
            return []
        if self._fleet_key is not None and not verify(assignment, self._fleet_key):
            logger.warning(
                "agent %s refuses assignment %s: signature missing or invalid",
                self.vehicle_id,
                assignment.assignment_id,
            )
            return self._fail_all(assignment, "assignment signature missing or invalid")
        if self._clock() >= assignment.slot_end:
            return self._fail_all(assignment, "slot ended before the assignment was handled")
        try:
            self.charger.set_charge_power_kw(
                assignment.slot_start, assignment.slot_end, assignment.charge_power_kw
            )
        except Exception as exc:  # the charger is outside our control; report, do not crash
            logger.exception("charger refused assignment %s", assignment.assignment_id)
            return self._fail_all(
                assignment, f"charger refused {assignment.charge_power_kw} kW: {exc}"
            )
        results = []
        for item in assignment.work:
            if item.work_id in self._handled:
                logger.info(
                    "agent %s: work %s delivered again; skipped", self.vehicle_id, item.work_id
                )
                continue
            self._remember(item.work_id)
            interrupt = self._interrupt
            if interrupt.reason is not None:
                results.append(self._failed(assignment, item, f"stopped: {interrupt.reason}"))
            elif self._clock() >= assignment.slot_end:
                results.append(self._failed(assignment, item, "slot ended before item started"))
            else:
                self.running = item.work_id
                try:
                    results.append(self._run_item(assignment, item, interrupt))
                finally:
                    self.running = None
        return results

    def _remember(self, work_id: str) -> None:
        self._handled[work_id] = None
        while len(self._handled) > self.limits.remembered_work:
            self._handled.popitem(last=False)

    def _run_item(self, assignment: Assignment, item: WorkItem, interrupt: Interrupt) -> Result:
        started_s = self._timer()
        provider = None
        progress_frac = None
        try:
            model = self.models.read(item.model, self.limits.max_model_bytes)
            array = load_input_array(item.input_uri, self.limits.max_input_bytes)
            outcome = self.runner.run(
                model,
                item.model.sha256,
                array,
                interrupt=interrupt,
                chunk_rows=self.limits.chunk_rows,
            )
            provider = outcome.provider
            output_uri, output_sha256 = write_output_array(
                item.output_uri, item.job_id, item.shard_index, self.vehicle_id, outcome.outputs
            )
        except StoppedError as exc:
            reason = exc.reason
            progress_frac = exc.progress_frac
        except ExecutionError as exc:
            reason = exc.reason
        except Exception as exc:  # a bug or an unforeseen library error: still one Result
            logger.exception("work item %s failed unexpectedly", item.work_id)
            reason = f"unexpected {type(exc).__name__}: {exc}"
        else:
            runtime_s = self._elapsed_s(started_s)
            return self._result(
                assignment,
                item,
                "done",
                runtime_s,
                provider=provider,
                output_uri=output_uri,
                output_sha256=output_sha256,
            )
        logger.warning("work item %s failed: %s", item.work_id, reason)
        return self._failed(
            assignment, item, reason, self._elapsed_s(started_s), provider, progress_frac
        )

    def _elapsed_s(self, started_s: float) -> float:
        return max(self._timer() - started_s, 0.0)

    def _fail_all(self, assignment: Assignment, reason: str) -> list[Result]:
        return [self._failed(assignment, item, reason) for item in assignment.work]

    def _failed(
        self,
        assignment: Assignment,
        item: WorkItem,
        reason: str,
        runtime_s: float = 0.0,
        provider: str | None = None,
        progress_frac: float | None = None,
    ) -> Result:
        return self._result(
            assignment,
            item,
            "failed",
            runtime_s,
            provider=provider,
            reason=one_line(reason),
            progress_frac=progress_frac,
        )

    def _result(
        self,
        assignment: Assignment,
        item: WorkItem,
        status: str,
        runtime_s: float,
        **fields: str | float | None,
    ) -> Result:
        return Result.model_validate(
            {
                "work_id": item.work_id,
                "assignment_id": assignment.assignment_id,
                "job_id": item.job_id,
                "shard_index": item.shard_index,
                "vehicle_id": self.vehicle_id,
                "status": status,
                "runtime_s": runtime_s,
                "energy_kwh": self.compute_kw * runtime_s / SECONDS_PER_HOUR,
                "finished_at": self._clock(),
                **fields,
            }
        )


class AgentPool:
    """Many agents in one process, routing assignments by `vehicle_id`."""

    def __init__(self, agents: Iterable[VehicleAgent] = ()) -> None:
        self._agents: dict[str, VehicleAgent] = {}
        for agent in agents:
            self.add(agent)

    def add(self, agent: VehicleAgent) -> None:
        """Add an agent; ValueError if its vehicle already has one."""
        if agent.vehicle_id in self._agents:
            raise ValueError(f"vehicle {agent.vehicle_id!r} already has an agent")
        self._agents[agent.vehicle_id] = agent

    def __len__(self) -> int:
        return len(self._agents)

    def __iter__(self) -> Iterator[VehicleAgent]:
        return iter(self._agents.values())

    def __contains__(self, vehicle_id: object) -> bool:
        return vehicle_id in self._agents

    def get(self, vehicle_id: str) -> VehicleAgent | None:
        """The agent of `vehicle_id`, if the pool holds one."""
        return self._agents.get(vehicle_id)

    def handle(self, assignment: Assignment) -> list[Result]:
        """Route to the vehicle's agent; an unknown vehicle is logged and yields nothing."""
        agent = self._agents.get(assignment.vehicle_id)
        if agent is None:
            logger.warning(
                "no agent for vehicle %s (assignment %s)",
                assignment.vehicle_id,
                assignment.assignment_id,
            )
            return []
        return agent.handle(assignment)

    def handle_all(self, assignments: Iterable[Assignment]) -> list[Result]:
        """Handle each assignment in order; all results, in order."""
        return [result for assignment in assignments for result in self.handle(assignment)]
