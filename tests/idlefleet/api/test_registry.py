"""Admins enroll and revoke keys over gRPC; the registry they change is the one every reader
checks records against."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest

from idlefleet.api.auth import Role
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.registry_desk import RegistryDesk
from streams.clients import KafkaSettings
from streams.identity import Identity
from streams.trust import Trust
from tests.idlefleet.conftest import SETTINGS, SITES, ServerFactory, Tokens
from tests.streams import factories


@pytest.fixture
def world(kafka_settings: KafkaSettings) -> Iterator[factories.World]:
    world = factories.World(kafka_settings, {"planner": "service"})
    yield world
    world.stop()


def stub_for(serve: ServerFactory, registry: RegistryDesk) -> pb_grpc.FleetPlannerStub:
    backend = LocalBackend(SITES, SETTINGS, lambda: datetime.now(UTC))
    _, port = serve(backend, registry=registry)
    return pb_grpc.FleetPlannerStub(grpc.insecure_channel(f"127.0.0.1:{port}"))


def test_an_admin_enrolls_and_revokes_a_cars_key(
    world: factories.World, serve: ServerFactory, tokens: Tokens
) -> None:
    trust = world.trust("planner").start()
    stub = stub_for(serve, RegistryDesk(trust, world.authority))
    car = Identity.generate("car-9", "car")
    request = pb.EnrollKeyRequest(
        enrollment_json=car.enrollment(datetime.now(UTC)).model_dump_json()
    )
    with pytest.raises(grpc.RpcError) as refused:
        stub.EnrollKey(request, metadata=tokens.metadata(Role.OPERATOR))
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    entry = stub.EnrollKey(request, metadata=tokens.metadata(Role.ADMIN))
    assert (entry.key_id, entry.principal, entry.role) == (car.key_id, "car-9", "car")
    assert not entry.HasField("revoked_at")
    assert trust.registry.get(car.key_id) is not None  # the readers' registry has it

    # another reader (a car's agent, say) learns it from the topic
    reader = Trust(world.kafka, world.authority.public_key).start()
    try:
        assert reader.registry.get(car.key_id) is not None
    finally:
        reader.stop()

    revoked = stub.RevokeKey(
        pb.RevokeKeyRequest(key_id=car.key_id), metadata=tokens.metadata(Role.ADMIN)
    )
    assert revoked.HasField("revoked_at")
    listed = stub.ListKeys(pb.ListKeysRequest(), metadata=tokens.metadata(Role.VIEWER))
    assert {k.principal: k.HasField("revoked_at") for k in listed.keys} == {
        "planner": False,
        "feeds": False,
        "car-9": True,
    }


def test_bad_requests_name_the_field_and_a_service_without_the_authority_says_so(
    world: factories.World, serve: ServerFactory, tokens: Tokens
) -> None:
    trust = world.trust("planner").start()
    admin = tokens.metadata(Role.ADMIN)
    stub = stub_for(serve, RegistryDesk(trust, world.authority))
    with pytest.raises(grpc.RpcError) as bad:
        stub.EnrollKey(pb.EnrollKeyRequest(enrollment_json="{}"), metadata=admin)
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.details().startswith("enrollment_json: ")
    with pytest.raises(grpc.RpcError) as unknown:
        stub.RevokeKey(pb.RevokeKeyRequest(key_id="k-nobody"), metadata=admin)
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    keyless = stub_for(serve, RegistryDesk(trust, None))
    car = Identity.generate("car-9", "car").enrollment(datetime.now(UTC)).model_dump_json()
    with pytest.raises(grpc.RpcError) as precondition:
        keyless.EnrollKey(pb.EnrollKeyRequest(enrollment_json=car), metadata=admin)
    assert precondition.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "fleet authority" in precondition.value.details()
