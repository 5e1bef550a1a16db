"""The real planner service on the test broker with the API over it: the shared fleet's cars,
forecasts and intensity published to the service's topics, a stepped service clock at T0, and
a plaintext channel to the server. For what only the streams carry: owner preferences, the
fleet registry and the plan's data notes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import grpc
import pytest

from idlefleet.api.auth import Role
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.service_backend import ServiceBackend
from idlefleet.service.planner import PlannerService, PlanRecord
from idlefleet.sim.clock import SteppedClock
from streams.catalog import T0
from streams.clients import KafkaSettings
from streams.messages import Message
from streams.producer import Publisher
from tests.idlefleet.conftest import CARS, SETTINGS, SITES, SLOTS, ServerFactory, Tokens
from tests.streams.factories import grid_signal, publish, solar_forecast

WAIT_S = 20.0


def fleet_records() -> list[Message]:
    """The shared fleet (tests.idlefleet.conftest.fill) as the records the service reads."""
    records: list[Message] = list(CARS)
    for region, base in (("DE", 300.0), ("GB", 200.0)):
        records.append(
            grid_signal([base + 100.0 * (s % 4 == 0) for s in range(SLOTS)], region=region)
        )
    records.append(solar_forecast([8.0 if 4 <= s < 12 else 0.0 for s in range(SLOTS)]))
    return records


@dataclass
class LiveFleet:
    """The service, its clock, the API's backend over it and a stub on a real channel."""

    service: PlannerService
    backend: ServiceBackend
    clock: SteppedClock
    stub: pb_grpc.FleetPlannerStub
    target: str
    kafka: KafkaSettings
    tokens: Tokens

    def metadata(self, role: Role) -> tuple[tuple[str, str]]:
        return self.tokens.metadata(role)

    def publish(self, *records: Message) -> None:
        publish(self.kafka, records)

    def tick(self, now: datetime) -> PlanRecord | None:
        """Move the clock to `now` (a slot start) and tick; the re-plan, if any, once the
        API serves it."""
        self.clock.now = max(self.clock.now, now)
        record = self.service.tick(now).replanned
        if record is not None:
            self.wait_for_plan(record)
        return record

    def wait_for_plan(self, record: PlanRecord) -> None:
        """Until the API's board holds the plan `record` made."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            views = self.backend.board.views
            if views is not None and views.snapshot is self.service.current_plan:
                return
            time.sleep(0.02)
        raise AssertionError(f"the API did not serve the plan made at {record.planned_at}")

    def get_plan(self, role: Role = Role.VIEWER) -> pb.PlanView:
        return self.stub.GetPlan(pb.GetPlanRequest(), metadata=self.metadata(role), timeout=10)


@pytest.fixture
def live(
    kafka_settings: KafkaSettings, serve: ServerFactory, tokens: Tokens
) -> Iterator[LiveFleet]:
    """The service started over the shared fleet (not yet ticked), the API over it."""
    publish(kafka_settings, fleet_records())
    clock = SteppedClock(T0)
    settings = SETTINGS.model_copy(
        update={"group_id": f"planner-{uuid.uuid4().hex[:8]}", "replan_every_slots": 100}
    )
    service = PlannerService(kafka_settings, settings, SITES, trust=None, clock=clock).start()
    publisher = Publisher(kafka_settings)
    backend = ServiceBackend(service, publisher, clock, poll_s=0.02).start()
    try:
        assert service.catch_up(WAIT_S), "the service did not read the fleet"
        _, port = serve(backend)
        target = f"127.0.0.1:{port}"
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.FleetPlannerStub(channel)
            yield LiveFleet(service, backend, clock, stub, target, kafka_settings, tokens)
    finally:
        backend.close()
        service.stop()
        publisher.close()
