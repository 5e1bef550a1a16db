"""Results finished while the broker is away reach it once it is back: the agent spools
them (executor.spool) and resends them, while it runs and after a restart.

Each test has a broker of its own, stopped and started again on the same port. The
embedded broker keeps topics in memory, so they come back empty and are created again (a
real cluster keeps them): whatever the results topic holds afterwards was sent after the
outage.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from executor.agent import AgentPool, VehicleAgent
from executor.runtime import OnnxRunner
from executor.service import AgentService
from idlefleet.sim.clock import SteppedClock
from streams.broker import EmbeddedBroker
from streams.clients import KafkaSettings, ensure_topics
from streams.messages import Result
from streams.topics import Stream
from tests.executor.conftest import MakeAssignment, MakeItem, WriteNpy
from tests.executor.test_agent_service import Collector
from tests.streams import factories

#: The producer gives a send up after this [ms]: the least kafka-python allows, its 30 s
#: request timeout plus our 5 ms linger.
DELIVERY_TIMEOUT_MS = 30_005

#: kafka-python 3.0 leaves the socket of each refused connection to the garbage collector,
#: which warns; an outage makes many.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)


class GatedCharger:
    """A charger that holds the set-point until the test opens the gate: the work behind it
    starts when the test says."""

    def __init__(self) -> None:
        self.called = threading.Event()
        self.gate = threading.Event()

    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        self.called.set()
        self.gate.wait(60)


@pytest.fixture
def own_broker(caplog: pytest.LogCaptureFixture) -> Iterator[EmbeddedBroker]:
    """A broker of the test's own. The sockets its outage left are collected at the end,
    where pytestmark still filters what the collector warns; the log records of the test
    hold some (in tracebacks), so those go first."""
    with EmbeddedBroker() as running:
        yield running
    for phase in ("setup", "call"):
        caplog.get_records(phase).clear()
    gc.collect()


@pytest.fixture
def kafka(own_broker: EmbeddedBroker) -> KafkaSettings:
    settings = KafkaSettings(
        bootstrap_servers=own_broker.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:12]}",
        delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
    )
    ensure_topics(settings)
    return settings


StartAgent = Callable[[GatedCharger], AgentService]


@pytest.fixture
def start_agent(
    kafka: KafkaSettings, runner: OnnxRunner, clock: SteppedClock, tmp_path: Path
) -> Iterator[StartAgent]:
    """Starts car-a's agent service on the spool `tmp_path/spool`; stops it at the end."""
    started: list[AgentService] = []

    def start(charger: GatedCharger) -> AgentService:
        pool = AgentPool([VehicleAgent("car-a", runner, charger, 0.3, clock)])
        service = AgentService(
            kafka,
            pool,
            spool_dir=tmp_path / "spool",
            resend_interval_s=0.2,
            heartbeat_interval_s=0.5,
            clock=clock,
            trust=None,
        )
        started.append(service.start())
        return service

    yield start
    for service in started:
        service.stop()


def finish_work_in_outage(
    kafka: KafkaSettings,
    broker: EmbeddedBroker,
    service: AgentService,
    charger: GatedCharger,
    work_id: str,
    make_assignment: MakeAssignment,
    make_item: MakeItem,
    write_npy: WriteNpy,
) -> None:
    """Send car-a work, stop the broker before it runs, and wait until its result is spooled."""
    features = np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)
    item = make_item(input_uri=write_npy("x.npy", features)).model_copy(update={"work_id": work_id})
    factories.publish(kafka, [make_assignment("car-a", [item])])
    assert charger.called.wait(30), "the agent never took the assignment"
    broker.stop()
    charger.gate.set()
    deadline = time.monotonic() + 30
    while len(service.spool) == 0:
        assert time.monotonic() < deadline, "the result was never spooled"
        time.sleep(0.02)


def delivered(kafka: KafkaSettings, work_id: str) -> Result:
    """The result of `work_id`, read from the results topic."""
    with Collector(kafka, [Stream.RESULTS]) as seen:
        found = seen.wait_for(lambda m: isinstance(m, Result) and m.work_id == work_id)
    assert isinstance(found, Result)
    return found


def test_results_finished_in_an_outage_longer_than_the_delivery_timeout_arrive_after_it(
    kafka: KafkaSettings,
    own_broker: EmbeddedBroker,
    start_agent: StartAgent,
    make_assignment: MakeAssignment,
    make_item: MakeItem,
    write_npy: WriteNpy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="executor.service")
    charger = GatedCharger()
    service = start_agent(charger)
    finish_work_in_outage(
        kafka, own_broker, service, charger, "w-out", make_assignment, make_item, write_npy
    )
    deadline = time.monotonic() + DELIVERY_TIMEOUT_MS / 1000 + 30
    while not any("not delivered" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the result's send never timed out"
        time.sleep(0.1)
    assert len(service.spool) == 1 and service.results_published == 0
    own_broker.start()
    ensure_topics(kafka)

    result = delivered(kafka, "w-out")
    assert result.status == "done" and result.vehicle_id == "car-a"
    deadline = time.monotonic() + 10
    while len(service.spool) > 0:  # acknowledged, so deleted
        assert time.monotonic() < deadline, "the delivered result stayed in the spool"
        time.sleep(0.02)
    assert service.results_published >= 1


def test_results_an_agent_stopped_with_in_an_outage_are_sent_by_the_next_one(
    kafka: KafkaSettings,
    own_broker: EmbeddedBroker,
    start_agent: StartAgent,
    make_assignment: MakeAssignment,
    make_item: MakeItem,
    write_npy: WriteNpy,
) -> None:
    charger = GatedCharger()
    first = start_agent(charger)
    finish_work_in_outage(
        kafka, own_broker, first, charger, "w-left", make_assignment, make_item, write_npy
    )
    first.stop()
    assert first.results_published == 0
    own_broker.start()
    ensure_topics(kafka)

    second = start_agent(GatedCharger())
    result = delivered(kafka, "w-left")
    assert result.status == "done" and result.vehicle_id == "car-a"
    deadline = time.monotonic() + 10
    while len(second.spool) > 0:
        assert time.monotonic() < deadline, "the delivered result stayed in the spool"
        time.sleep(0.02)
