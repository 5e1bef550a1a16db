"""Car agents on Kafka: assignments in; results and heartbeats out; presence from telemetry.

`AgentService` runs one or many `VehicleAgent`s in a process (`idlefleet agent`). It reads
each car's telemetry first (`VehicleAgent.observe`), so an agent knows whether its car is
parked, plugged in and lent, its charger limit, battery and reserve before it takes work;
then it reads the assignments, skipping those whose slot ended before it started (a
backlog, not work). Every `heartbeat_interval_s` it publishes a `Heartbeat` per car with the
work running now.

Set-points and work take separate paths. One set-point thread applies each assignment's
set-point as it is read (`VehicleAgent.apply_setpoint`), in the order the topic delivers
them, and never waits for work. The work then queues behind its car's running work, and
`workers` threads run the cars' queues, one assignment of a car at a time, so a car whose
work runs long holds one worker thread, not the other cars' set-points or work. A refused
assignment's failed results do not queue behind its car's work.

When a car departs, is unplugged or its owner withdraws consent, its agent stops the
running shard at once (`VehicleAgent.stop`) and reports it failed with the share done;
`stop()` does the same for every car and returns within `stop_timeout_s`.

No result is lost while the broker is away: each is written to the car's result spool
(executor.spool, `spool_dir`) before it is published and deleted once the broker
acknowledged it. Every `resend_interval_s`, and at start for results an earlier run left,
the spooled results no send is waiting on are published again. The service takes a result
once per work id, so a result sent twice is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from executor.agent import Admission, AgentPool, VehicleAgent
from executor.spool import ResultSpool, Spooled
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.errors import PublishError
from streams.messages import Assignment, Heartbeat, Message, Result, Telemetry
from streams.producer import Publisher
from streams.topics import Stream
from streams.trust import Trust

logger = logging.getLogger(__name__)


def wall_clock() -> datetime:
    return datetime.now(UTC)


class AgentService:
    """Runs a pool of car agents against the assignments topic."""

    def __init__(
        self,
        kafka: KafkaSettings,
        agents: AgentPool,
        *,
        spool_dir: Path,
        resend_interval_s: float = 10.0,
        heartbeat_interval_s: float = 5.0,
        workers: int = 2,
        clock: Callable[[], datetime] = wall_clock,
        stop_timeout_s: float = 5.0,
        on_handled: Callable[[Assignment, list[Result]], None] | None = None,
        trust: Trust | None,
    ) -> None:
        """`trust` holds the cars' identities: it signs their telemetry-side records
        (heartbeats, results) and takes only assignments a service signed; None trusts the
        topic (tests of the agent alone)."""
        if min(heartbeat_interval_s, resend_interval_s, workers, stop_timeout_s) <= 0:
            raise ValueError(
                "heartbeat_interval_s, resend_interval_s, workers and stop_timeout_s must be "
                "positive"
            )
        self.agents = agents
        self.spool = ResultSpool(spool_dir)
        self.resend_interval_s = resend_interval_s
        self.workers = workers
        self.heartbeat_interval_s = heartbeat_interval_s
        self.stop_timeout_s = stop_timeout_s
        self._clock = clock
        self._on_handled = on_handled
        self._pending = 0  # assignments read and not finished
        self._idle = threading.Condition()  # guards _pending, _queued and _busy
        self._queued: dict[str, deque[tuple[Assignment, Admission]]] = {}  # work per car
        self._busy: set[str] = set()  # cars whose queue a worker thread runs
        self.trust = trust
        self._publisher = Publisher(kafka) if trust is None else trust.publisher()
        rules = None if trust is None else trust.rules()
        self._setpoints = ThreadPoolExecutor(1, thread_name_prefix="agent-setpoints")
        self._workers = ThreadPoolExecutor(workers, thread_name_prefix="agent-work")
        self._started_at = clock()
        self._stopping = threading.Event()
        self._heartbeat_thread = threading.Thread(
            target=self._beat, name="agent-heartbeats", daemon=True
        )
        self._resend_thread = threading.Thread(
            target=self._resend_spooled, name="agent-resend", daemon=True
        )
        cars = [agent.vehicle_id.encode() for agent in agents]  # both topics are keyed by car
        self._telemetry = StreamReader(
            kafka, None, [Stream.TELEMETRY], self._on_telemetry, None, rules=rules, only_keys=cars
        )
        self._assignments = StreamReader(
            kafka,
            None,
            [Stream.ASSIGNMENTS],
            self._on_assignment,
            None,
            rules=rules,
            only_keys=cars,
        )
        self.assignments_skipped = 0
        self.results_published = 0  # acknowledged by the broker

    def start(self, catch_up_timeout_s: float = 30.0) -> AgentService:
        """Resend spooled results, learn where the cars are, then take assignments and send
        heartbeats."""
        self._started_at = self._clock()
        if self.trust is not None:
            self.trust.start(catch_up_timeout_s)
        self._resend_thread.start()
        pools = {id(agent.sandboxes): agent.sandboxes for agent in self.agents}
        for pool in pools.values():  # they start while the telemetry is read
            pool.prestart(self.workers)
        self._telemetry.start()
        if not self._telemetry.wait_caught_up(catch_up_timeout_s):
            logger.warning(
                "telemetry not caught up after %.0f s; starting anyway", catch_up_timeout_s
            )
        self._publish_heartbeats()
        self._assignments.start()
        self._heartbeat_thread.start()
        return self

    def stop(self, reason: str = "the agent is shutting down") -> None:
        """Stop every car's work now, publish what was reported, and close."""
        self._stopping.set()
        for agent in self.agents:
            agent.stop(reason)
        self._assignments.stop(self.stop_timeout_s)
        self._telemetry.stop(self.stop_timeout_s)
        if self.trust is not None:
            self.trust.stop()
        self._setpoints.shutdown(wait=True, cancel_futures=True)
        self._workers.shutdown(wait=True, cancel_futures=True)
        if self._resend_thread.is_alive():
            self._resend_thread.join(self.stop_timeout_s)
        try:
            self._publisher.flush(self.stop_timeout_s)
        except (PublishError, KafkaError) as exc:  # spooled results go at the next start
            logger.warning("not everything was delivered before the agent stopped: %s", exc)
        finally:
            self._publisher.close()

    def wait_caught_up(self, timeout_s: float = 30.0) -> bool:
        """Every assignment published so far has been read and its work handed out."""
        return self._telemetry.wait_caught_up(timeout_s) and self._assignments.wait_caught_up(
            timeout_s
        )

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Every assignment published so far has been handled and its results sent once
        (delivered, or spooled to be sent again)."""
        deadline = time.monotonic() + timeout_s
        if not self.wait_caught_up(timeout_s):
            return False
        with self._idle:
            return self._idle.wait_for(
                lambda: self._pending == 0, max(0.0, deadline - time.monotonic())
            )

    # -- readers ------------------------------------------------------------------------
    def _on_telemetry(self, stream: Stream, message: Message) -> None:
        if not isinstance(message, Telemetry):
            return
        agent = self.agents.get(message.vehicle_id)
        if agent is not None:
            agent.observe(message)

    def _on_assignment(self, stream: Stream, message: Message) -> None:
        if not isinstance(message, Assignment) or message.vehicle_id not in self.agents:
            return
        if message.slot_end <= self._started_at:
            self.assignments_skipped += 1  # ended before this agent started: history
            return
        if not self._stopping.is_set():
            with self._idle:
                self._pending += 1
            self._submit(self._setpoints, self._apply, message)

    # -- set-points and work ------------------------------------------------------------
    def _apply(self, assignment: Assignment) -> None:
        """The set-point thread: apply the set-point, then queue the work (or its refusal)."""
        agent = self.agents.get(assignment.vehicle_id)
        if agent is None:
            self._finished()
            return
        try:
            admission = agent.apply_setpoint(assignment)
        except Exception as exc:  # the thread must go on to the next car's set-point
            logger.exception("set-point of %s could not be applied", assignment.assignment_id)
            admission = Admission(f"unexpected {type(exc).__name__}: {exc}")
        if not admission.runs_work:
            self._submit(self._workers, self._run, agent, assignment, admission)
            return
        with self._idle:
            self._queued.setdefault(agent.vehicle_id, deque()).append((assignment, admission))
            if agent.vehicle_id in self._busy:
                return
            self._busy.add(agent.vehicle_id)
        self._submit(self._workers, self._run_queue, agent)

    def _run_queue(self, agent: VehicleAgent) -> None:
        """A worker thread: run the car's oldest queued assignment, then requeue the car."""
        with self._idle:
            assignment, admission = self._queued[agent.vehicle_id].popleft()
        self._run(agent, assignment, admission)
        with self._idle:
            more = bool(self._queued[agent.vehicle_id])
            if not more:
                self._busy.discard(agent.vehicle_id)
        if more:
            self._submit(self._workers, self._run_queue, agent)

    def _run(self, agent: VehicleAgent, assignment: Assignment, admission: Admission) -> None:
        try:
            results = agent.run_work(assignment, admission)
            self._send([self.spool.add(result) for result in results])
            if self._on_handled is not None:
                self._on_handled(assignment, results)
        except Exception:  # a worker must never die silently: log and go on
            logger.exception("assignment %s could not be handled", assignment.assignment_id)
        finally:
            self._finished()

    def _finished(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _submit(
        self, executor: ThreadPoolExecutor, task: Callable[..., None], *args: object
    ) -> None:
        try:
            executor.submit(task, *args)
        except RuntimeError:  # shut down: the service is stopping and drops what is left
            if not self._stopping.is_set():
                raise

    # -- results ------------------------------------------------------------------------
    def _send(self, spooled: list[Spooled]) -> None:
        """Publish results and wait; delete those the broker acknowledged from the spool."""
        futures: list[FutureRecordMetadata | None] = [None] * len(spooled)
        try:
            for index, item in enumerate(spooled):
                try:
                    futures[index] = self._publisher.publish(Stream.RESULTS, item.result)
                except PublishError as exc:
                    logger.warning("result of work %s not sent: %s", item.result.work_id, exc)
            try:
                self._publisher.flush()
            except PublishError as exc:
                logger.warning("results not delivered now; spooled ones are sent again: %s", exc)
        finally:  # whatever happened, each result is delivered or waits for the next round
            for item, future in zip(spooled, futures, strict=True):
                delivered = future is not None and future.is_done and future.succeeded()
                self.spool.settle(item, delivered)
                self.results_published += delivered

    def _resend_spooled(self) -> None:
        """The resend thread: publish the spooled results no send waits on, now and then
        every `resend_interval_s`."""
        while True:
            try:
                unsent = self.spool.unsent()
                if unsent:
                    logger.info("resending %d spooled result(s)", len(unsent))
                    self._send(unsent)
            except Exception:  # the thread must go on: the next round tries again
                logger.exception("spooled results could not be resent")
            if self._stopping.wait(self.resend_interval_s):
                return

    # -- heartbeats ---------------------------------------------------------------------
    def _beat(self) -> None:
        next_at = time.monotonic() + self.heartbeat_interval_s
        while not self._stopping.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.heartbeat_interval_s
            try:
                self._publish_heartbeats()
            except Exception:  # the broker may be away; the next beat tries again
                logger.exception("heartbeats could not be published")

    def _publish_heartbeats(self) -> None:
        now = self._clock()
        for agent in self.agents:
            self._publisher.publish(Stream.HEARTBEATS, heartbeat_of(agent, now))
        self._publisher.flush()


def heartbeat_of(agent: VehicleAgent, now: datetime) -> Heartbeat:
    running = agent.running
    return Heartbeat(
        vehicle_id=agent.vehicle_id,
        sent_at=now,
        running=[] if running is None else [running],
        provider=agent.runner.providers[0],
    )
