"""The car's agent: apply an assignment's charge power, run its work, report results.

Physics first, owners right after: whatever it is sent, the agent protects its car.

- Set-points and work take separate paths (`apply_setpoint`, `run_work`; `handle` runs one,
  then the other). A set-point never waits behind running work.
- A set-point is clamped to [0, the car's charger limit] (the lower of the configured
  `charger_kw` and its telemetry's), and the clamp is logged.
- A slot's power comes from the newest plan revision seen for it (`plan_revision`; of equal
  revisions from two plans, the first): an older assignment arriving later leaves the
  charger alone and its items fail "superseded by plan revision N".
- No compute at reserve: when the car's newest battery reading is at or below its reserve
  plus what compute can still draw before the lease ends, items fail with the reason.
- Each item runs in a work process (`executor.sandbox`) with a memory bound; it is stopped
  at its lease end (slot end + `lease_grace_s`) and killed if it has not ended
  `kill_after_s` later, so a runaway model ends in a failed result with its progress,
  never a stuck car.

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from executor.errors import one_line
from executor.jobdata import ItemKeys, ModelCacheConfig
from executor.roots import StorageRoots
from executor.runtime import Interrupt, OnnxRunner
from executor.sandbox import StopReason, WorkReply, WorkRequest, sandboxes_for
from streams.identity import Identity
from streams.messages import Assignment, Result, Telemetry, WorkItem
from streams.sealing import SealError, item_key_context, unwrap_key

logger = logging.getLogger(__name__)

#: Reports dated further ahead of the agent's clock than this are not believed.
MAX_CLOCK_SKEW = timedelta(minutes=5)

SECONDS_PER_HOUR = 3600.0
#: Slots whose newest plan revision an agent remembers [count] (ten days of 15-minute slots).
REMEMBERED_SLOTS = 1000


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
    """What an agent allows one work item.

    The largest files it reads [bytes]; rows fed per inference call [count] (0: all), which
    bounds how long a stop waits; how many handled work ids it remembers [count]. A run goes
    on at most `lease_grace_s` [s, on the agent's clock] past its slot's end (its lease) and
    a stopped run at most `kill_after_s` [s, wall time] before its process is killed; the
    process holds at most `memory_bytes` [bytes] of data and a run uses at most `cpu_s` [s]
    of CPU time (None: no bound). Items read and write local files only inside `roots`;
    models fetched over HTTP are kept in `model_cache` (None: fetched each time).
    """

    max_model_bytes: int = 512 * 1024 * 1024
    max_input_bytes: int = 256 * 1024 * 1024
    chunk_rows: int = 256
    remembered_work: int = 100_000
    lease_grace_s: float = 10.0
    kill_after_s: float = 3.0
    memory_bytes: int | None = 4 * 1024**3
    cpu_s: float | None = 4 * 3600.0
    roots: StorageRoots = field(default_factory=StorageRoots.default)
    model_cache: ModelCacheConfig | None = None

    def __post_init__(self) -> None:
        for name in ("lease_grace_s", "kill_after_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and non-negative, got {value}")
        if self.memory_bytes is not None and self.memory_bytes <= 0:
            raise ValueError(f"memory_bytes must be positive or None, got {self.memory_bytes}")
        if self.cpu_s is not None and not (math.isfinite(self.cpu_s) and self.cpu_s > 0):
            raise ValueError(f"cpu_s must be finite and positive or None, got {self.cpu_s}")


@dataclass(frozen=True)
class Admission:
    """What the set-point path decided about an assignment's work: run it (`refusal` None),
    fail every item with `refusal`, or nothing at all (`addressed` False: another car's)."""

    refusal: str | None = None
    addressed: bool = True

    @property
    def runs_work(self) -> bool:
        return self.addressed and self.refusal is None


def absence(telemetry: Telemetry) -> str | None:
    """Why a car cannot compute now, or None when it is parked, plugged in and lent."""
    if telemetry.site_id is None:
        return "the car departed"
    if not telemetry.plugged_in:
        return "the car was unplugged"
    if not telemetry.participating:
        return "the owner withdrew consent"
    return None


class VehicleAgent:
    """Runs one vehicle's assignments.

    `compute_kw` [kW] is the battery power drawn while computing; a result's energy is
    `energy_kwh = compute_kw * runtime_s / 3600`, where `runtime_s` [s] is the item's wall
    time (reading and verifying, inference, writing), failed items included. `clock` returns
    the current time, UTC and timezone-aware. `charger_kw` [kW], when given, is the most
    grid power the car's charger may draw as configured; the car's telemetry (`observe`)
    can only lower it. `identities` are the car's enrolled keys: they unwrap the keys of
    sealed work (`streams.sealing`); the unwrapped keys go to the work process in memory
    only. `runner` must pickle (its class defined at module level): the work
    runs in child processes holding a copy of it.
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
        charger_kw: float | None = None,
        identities: tuple[Identity, ...] = (),
    ) -> None:
        if not math.isfinite(compute_kw) or compute_kw < 0:
            raise ValueError(f"compute_kw must be finite and non-negative, got {compute_kw}")
        if charger_kw is not None and (not math.isfinite(charger_kw) or charger_kw < 0):
            raise ValueError(f"charger_kw must be finite and non-negative, got {charger_kw}")
        if clock().tzinfo is None:
            raise ValueError("clock must return timezone-aware datetimes")
        self.vehicle_id = vehicle_id
        self.runner = runner
        self.charger = charger
        self.compute_kw = compute_kw
        self.charger_kw = charger_kw
        self.identities = identities
        self.limits = limits or AgentLimits()
        self.sandboxes = sandboxes_for(runner, self.limits.memory_bytes)  # where work runs
        self._grace = timedelta(seconds=self.limits.lease_grace_s)
        self._clock = clock
        self._timer = timer
        self._state = threading.Lock()  # guards _interrupt, _car and _plans
        self._interrupt = Interrupt()
        self._car: Telemetry | None = None  # the newest telemetry of this car
        self._plans: OrderedDict[datetime, tuple[int, str]] = OrderedDict()  # slot start ->
        # the newest (plan_revision, plan_id) applied, oldest slot first
        self._setpoint = threading.Lock()  # one set-point at a time, never behind work
        self._work = threading.Lock()  # one work item at a time
        self._handled: OrderedDict[str, None] = OrderedDict()  # work ids, oldest first
        self.running: str | None = None  # work id of the item running now

    @property
    def stopped_reason(self) -> str | None:
        """Why the agent is stopped, or None while it takes work."""
        return self._interrupt.reason

    @property
    def car(self) -> Telemetry | None:
        """The newest telemetry this agent has of its car, if any."""
        return self._car

    @property
    def charger_limit_kw(self) -> float | None:
        """The most grid power [kW] a set-point may ask: the configured `charger_kw` or the
        telemetry's, whichever is lower; None while neither is known."""
        car = self._car
        known = [
            kw
            for kw in (self.charger_kw, None if car is None else car.charger_kw)
            if kw is not None
        ]
        return min(known) if known else None

    def observe(self, telemetry: Telemetry) -> None:
        """Learn the car's state from its telemetry: charger limit, battery and reserve.

        A report older than the newest one is ignored, and so is one dated beyond the agent's
        clock plus `MAX_CLOCK_SKEW` (a forged or clock-jumped report would otherwise pin the
        car's state). A car that departed, was unplugged or whose owner withdrew consent stops
        its work (`stop`); back, it resumes.
        """
        if telemetry.vehicle_id != self.vehicle_id:
            return
        if telemetry.event_time > self._clock() + MAX_CLOCK_SKEW:
            logger.warning(
                "agent %s: telemetry dated %s ignored: ahead of this agent's clock",
                self.vehicle_id,
                telemetry.event_time.isoformat(),
            )
            return
        with self._state:
            if self._car is not None and telemetry.event_time < self._car.event_time:
                return
            self._car = telemetry
        reason = absence(telemetry)
        if reason is None:
            self.resume()
        else:
            self.stop(reason)

    def stop(self, reason: str) -> None:
        """End the running item now and refuse work until `resume` (thread-safe)."""
        with self._state:
            if self._interrupt.reason is None:
                logger.info("agent %s stops: %s", self.vehicle_id, reason)
            self._interrupt.fire(reason)

    def resume(self) -> None:
        """Take work again (the car is back, plugged in and participating)."""
        with self._state:
            if self._interrupt.fired:
                logger.info("agent %s resumes", self.vehicle_id)
                self._interrupt = Interrupt()

    def handle(self, assignment: Assignment) -> list[Result]:
        """Apply the slot's set-point (`apply_setpoint`), then run the work (`run_work`)."""
        return self.run_work(assignment, self.apply_setpoint(assignment))

    def apply_setpoint(self, assignment: Assignment) -> Admission:
        """Check the assignment and set its slot's charge power; never waits for running work.

        Refused before the charger is touched (the reader has already checked that a service
        signed it): another vehicle's assignment (logged, no results), one whose slot has
        ended, and one superseded for its slot by a newer plan revision (or by an equal revision of
        another plan: the first one applied is kept). The power is clamped to [0, the
        charger limit] (logged). When the charger refuses the power, the work fails too.
        """
        with self._setpoint:
            if assignment.vehicle_id != self.vehicle_id:
                logger.warning(
                    "agent %s refuses assignment %s addressed to %s",
                    self.vehicle_id,
                    assignment.assignment_id,
                    assignment.vehicle_id,
                )
                return Admission(addressed=False)
            if self._clock() >= assignment.slot_end:
                return Admission("slot ended before the assignment was handled")
            with self._state:
                superseded = self._superseded(assignment)
                if superseded is None:
                    self._newest_plan(assignment)
            if superseded is not None:
                logger.info(
                    "agent %s ignores assignment %s (plan %s revision %d): %s",
                    self.vehicle_id,
                    assignment.assignment_id,
                    assignment.plan_id,
                    assignment.plan_revision,
                    superseded,
                )
                return Admission(superseded)
            power_kw = self._clamped(assignment)
            try:
                self.charger.set_charge_power_kw(
                    assignment.slot_start, assignment.slot_end, power_kw
                )
            except Exception as exc:  # the charger is outside our control; report, do not crash
                logger.exception("charger refused assignment %s", assignment.assignment_id)
                return Admission(f"charger refused {power_kw} kW: {exc}")
            return Admission()

    def _superseded(self, assignment: Assignment) -> str | None:
        """Why a newer plan for the assignment's slot overrides it, if one does (hold _state)."""
        newest = self._plans.get(assignment.slot_start)
        if newest is None or newest == (assignment.plan_revision, assignment.plan_id):
            return None
        revision, plan_id = newest
        if assignment.plan_revision > revision:
            return None
        return f"superseded by plan revision {revision} (plan {plan_id})"

    def _newest_plan(self, assignment: Assignment) -> None:
        """Remember the assignment's plan as its slot's newest (hold _state)."""
        self._plans[assignment.slot_start] = (assignment.plan_revision, assignment.plan_id)
        self._plans.move_to_end(assignment.slot_start)
        while len(self._plans) > REMEMBERED_SLOTS:
            self._plans.popitem(last=False)

    def _clamped(self, assignment: Assignment) -> float:
        """The assignment's power within [0, charger limit] [kW]; a change is logged."""
        asked_kw = assignment.charge_power_kw
        limit_kw = self.charger_limit_kw
        power_kw = max(asked_kw, 0.0)
        if limit_kw is not None:
            power_kw = min(power_kw, limit_kw)
        if power_kw != asked_kw:
            logger.warning(
                "agent %s clamps the %.3f kW set-point of assignment %s to %.3f kW "
                "(charger limit %s kW)",
                self.vehicle_id,
                asked_kw,
                assignment.assignment_id,
                power_kw,
                limit_kw,
            )
        return power_kw

    def run_work(self, assignment: Assignment, admission: Admission) -> list[Result]:
        """Run the work `admission` (from `apply_setpoint`) lets run; one Result per item.

        A refused assignment's items all fail with the refusal, at once. Otherwise items run
        one at a time, each in a work process (`executor.sandbox`) that is stopped when the
        agent stops, the lease ends (slot end + `lease_grace_s`) or the battery reaches its
        reserve, and killed when it has not ended `kill_after_s` after that. An item fails
        without running when the agent is stopped, the slot has ended, a newer plan
        revision superseded the assignment, or the battery is at its reserve: the car's
        newest reading is at or below its reserve plus the energy compute can still draw
        before the lease stops it (the larger of the agent's and the telemetry's
        `compute_kw` [kW] times the time to slot end + grace); an agent that has no
        telemetry of its car cannot tell, and runs the work. Items this agent already
        handled (a duplicate delivery) are skipped: they yield no second result.
        """
        if not admission.addressed:
            return []
        if admission.refusal is not None:
            return [
                self._failed(assignment, item, admission.refusal, fault="car")
                for item in assignment.work
            ]
        with self._work:
            return self._run_work(assignment)

    def _run_work(self, assignment: Assignment) -> list[Result]:
        results = []
        for item in assignment.work:
            if item.work_id in self._handled:
                logger.info(
                    "agent %s: work %s delivered again; skipped", self.vehicle_id, item.work_id
                )
                continue
            self._remember(item.work_id)
            interrupt = self._interrupt
            refusal = self._refusal(assignment, interrupt)
            if refusal is not None:
                logger.info("agent %s: work %s not run: %s", self.vehicle_id, item.work_id, refusal)
                results.append(self._failed(assignment, item, refusal, fault="car"))
                continue
            self.running = item.work_id
            try:
                results.append(self._run_item(assignment, item, interrupt))
            finally:
                self.running = None
        return results

    def _refusal(self, assignment: Assignment, interrupt: Interrupt) -> str | None:
        """Why an item of `assignment` may not start now (see `run_work`), or None."""
        reason = interrupt.reason
        if reason is not None:
            return f"stopped: {reason}"
        now = self._clock()
        if now >= assignment.slot_end:
            return "slot ended before item started"
        with self._state:
            superseded = self._superseded(assignment)
        if superseded is not None:
            return superseded
        car = self._car
        if car is None:
            return None
        lease_s = (assignment.slot_end + self._grace - now).total_seconds()
        margin_kwh = max(self.compute_kw, car.compute_kw) * lease_s / SECONDS_PER_HOUR
        if car.energy_kwh > car.reserve_kwh + margin_kwh:
            return None
        return (
            f"battery at reserve: {car.energy_kwh:.3f} kWh is not above the "
            f"{car.reserve_kwh:.3f} kWh reserve plus the {margin_kwh:.3f} kWh compute may "
            "draw until the lease ends; compute refused"
        )

    def _remember(self, work_id: str) -> None:
        self._handled[work_id] = None
        while len(self._handled) > self.limits.remembered_work:
            self._handled.popitem(last=False)

    def _stop_reason(self, assignment: Assignment, interrupt: Interrupt) -> StopReason:
        """When a running item must stop: the agent stopped, the lease ended, or the battery
        reached its reserve."""
        lease_end = assignment.slot_end + self._grace
        grace_s = self.limits.lease_grace_s

        def stop_reason() -> str | None:
            if interrupt.reason is not None:
                return interrupt.reason
            if self._clock() >= lease_end:
                return (
                    f"the lease ended at {assignment.slot_end.isoformat()} (+{grace_s:g} s grace)"
                )
            car = self._car
            if car is not None and car.energy_kwh <= car.reserve_kwh:
                return f"the battery reached its {car.reserve_kwh:g} kWh reserve"
            return None

        return stop_reason

    def _keys_of(self, item: WorkItem) -> ItemKeys:
        """The item's model and shard keys, unwrapped with this car's keys; SealError."""
        contexts = {
            part: item_key_context(item.job_id, part, self.vehicle_id, item.shard_index)
            for part in ("shard", "model")
        }
        return ItemKeys(
            shard=None
            if item.shard_key is None
            else unwrap_key(item.shard_key, self.identities, contexts["shard"]),
            model=None
            if item.model_key is None
            else unwrap_key(item.model_key, self.identities, contexts["model"]),
        )

    def _run_item(self, assignment: Assignment, item: WorkItem, interrupt: Interrupt) -> Result:
        started_s = self._timer()
        try:
            keys = self._keys_of(item)
        except SealError as exc:
            return self._failed(assignment, item, f"cannot open the item's keys: {exc.reason}")
        request = WorkRequest(
            item,
            self.vehicle_id,
            self.limits.max_model_bytes,
            self.limits.max_input_bytes,
            self.limits.chunk_rows,
            self.limits.roots,
            self.limits.cpu_s,
            keys,
            self.limits.model_cache,
        )
        try:
            reply = self.sandboxes.run(
                request, self._stop_reason(assignment, interrupt), self.limits.kill_after_s
            )
        except Exception as exc:  # the work process could not start: still one Result
            logger.exception("work item %s could not be handed to a work process", item.work_id)
            reply = WorkReply("failed", f"unexpected {type(exc).__name__}: {exc}")
        runtime_s = self._elapsed_s(started_s)
        if reply.status == "done":
            return self._result(
                assignment,
                item,
                "done",
                runtime_s,
                provider=reply.provider,
                output_uri=reply.output_uri,
                output_sha256=reply.output_sha256,
            )
        reason = reply.reason or "failed without a reason"
        logger.warning("work item %s failed: %s", item.work_id, reason)
        car = self._car
        at_reserve = car is not None and car.energy_kwh <= car.reserve_kwh
        # Stopped because the car left or is at reserve: the car's; anything else the work's.
        fault = "car" if interrupt.reason is not None or at_reserve else "work"
        return self._failed(
            assignment, item, reason, runtime_s, reply.provider, reply.progress_frac, fault
        )

    def _elapsed_s(self, started_s: float) -> float:
        return max(self._timer() - started_s, 0.0)

    def _failed(
        self,
        assignment: Assignment,
        item: WorkItem,
        reason: str,
        runtime_s: float = 0.0,
        provider: str | None = None,
        progress_frac: float | None = None,
        fault: str = "work",
    ) -> Result:
        return self._result(
            assignment,
            item,
            "failed",
            runtime_s,
            provider=provider,
            reason=one_line(reason),
            progress_frac=progress_frac,
            fault=fault,
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
