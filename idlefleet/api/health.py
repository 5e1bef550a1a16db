"""grpc.health.v1 status that follows the API's dependencies: the broker and the solver.

A monitor thread runs every probe periodically; the server is SERVING only while all answer.
It also reads the service's notes (degraded but serving: planning on fallback intensity, a
live feed failing); they leave the status SERVING and are logged whenever they change.
grpc.health.v1 carries no text, so `HealthMonitor.notes` and the log are where they show.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from grpc_health.v1 import health, health_pb2

from optimizer import (
    Horizon,
    OptimizerError,
    Region,
    Scenario,
    Site,
    SolveStatus,
    Vehicle,
    plan_scenario,
)
from streams.broker import broker_answers

log = logging.getLogger(__name__)

Probe = Callable[[], bool]
#: Why the service is degraded but serving, one sentence each; empty when it is not.
Notes = Callable[[], Sequence[str]]
DEFAULT_INTERVAL_S = 5.0
PROBE_TIME_LIMIT_S = 5.0


def _probe_scenario() -> Scenario:
    """One car owed 1 kWh in one hour: the smallest problem the MILP path really solves."""
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return Scenario(
        horizon=Horizon(start, slot_minutes=60, slots=1),
        carbon_price_per_tonne=100.0,
        regions=(Region("R", intensity_g_per_kwh=(100.0,), price_per_kwh=(0.0,)),),
        sites=(Site("S", "R", grid_limit_kw=10.0, pv_kw=(0.0,)),),
        vehicles=(
            Vehicle(
                "car",
                "S",
                arrival=start,
                departure=start + timedelta(hours=1),
                battery_kwh=10.0,
                soc_kwh=0.0,
                compute_kw=0.0,
                target_kwh=1.0,
                charger_kw=2.0,
            ),
        ),
    )


def solver_answers() -> bool:
    """The optimizer's MILP path (Pyomo and HiGHS, as the planner calls them) plans a tiny
    scenario to optimality. Not HiGHS directly: a HiGHS made with other options first would
    make the optimizer's later solves fail."""
    try:
        plan = plan_scenario(_probe_scenario(), "milp", time_limit_s=PROBE_TIME_LIMIT_S)
    except (OptimizerError, ImportError):
        log.warning("solver probe failed", exc_info=True)
        return False
    return plan.status is SolveStatus.optimal


def broker_probe(bootstrap_servers: str, timeout_s: float = 2.0) -> Probe:
    """A probe that the Kafka broker at `bootstrap_servers` answers a metadata request."""
    return functools.partial(broker_answers, bootstrap_servers, timeout_s)


class HealthMonitor:
    """Sets `services` (and the server as a whole, "") SERVING while every probe answers."""

    def __init__(
        self,
        servicer: health.HealthServicer,
        services: Sequence[str],
        probes: Mapping[str, Probe],
        interval_s: float = DEFAULT_INTERVAL_S,
        notes: Notes | None = None,
    ) -> None:
        self._servicer = servicer
        self._notes = notes
        #: The notes of the last check: degraded while not empty (still SERVING).
        self.notes: tuple[str, ...] = ()
        self._services = ("", *services)
        self._probes = dict(probes)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-health", daemon=True)
        self._failing: list[str] | None = None

    def check(self) -> None:
        """Run every probe now and publish the status."""
        failing = [name for name, probe in self._probes.items() if not probe()]
        status = (
            health_pb2.HealthCheckResponse.NOT_SERVING
            if failing
            else health_pb2.HealthCheckResponse.SERVING
        )
        for service in self._services:
            self._servicer.set(service, status)
        notes = self._read_notes()
        if failing != self._failing or notes != self.notes:
            if failing:
                log.warning("API not serving: %s not reachable", ", ".join(failing))
            elif notes:
                log.warning("API serving, degraded: %s", "; ".join(notes))
            else:
                log.info("API serving: %s reachable", ", ".join(self._probes))
            self._failing = failing
            self.notes = notes

    def _read_notes(self) -> tuple[str, ...]:
        if self._notes is None:
            return ()
        try:
            return tuple(self._notes())
        except Exception as exc:  # a broken note must not take health down
            log.warning("health notes failed: %s", exc)
            return (f"health notes failed: {exc}",)

    def start(self) -> None:
        """Check once now, then every interval in a thread."""
        self.check()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.check()
