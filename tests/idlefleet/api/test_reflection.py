"""Reflection: off by default; when on, only callers with a bearer token may read the schema."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from idlefleet.api.auth import Role
from idlefleet.api.server import SERVICE_NAME
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.settings import ApiSettings
from tests.idlefleet.api.conftest import with_metadata
from tests.idlefleet.conftest import ServerFactory, Tokens, rpc_error

REFLECTION_ON = ApiSettings(grpc_reflection=True)
LIST_SERVICES = reflection_pb2.ServerReflectionRequest(list_services="")


def _list_services(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> object:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    return next(stub.ServerReflectionInfo(iter([LIST_SERVICES]), metadata=metadata, timeout=5))


def test_reflection_is_off_by_default(channel: grpc.Channel, tokens: Tokens) -> None:
    error = rpc_error(lambda: _list_services(channel, tokens.metadata(Role.ADMIN)))
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED


def test_reflection_needs_a_known_token(
    serve: ServerFactory, backend: LocalBackend, tokens: Tokens
) -> None:
    _, port = serve(backend, settings=REFLECTION_ON)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        for metadata in ((), (("authorization", "Bearer not-a-known-token-at-all"),)):
            error = rpc_error(lambda: _list_services(channel, metadata))  # noqa: B023
            assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert _list_services(channel, tokens.metadata(Role.VIEWER))


def test_reflection_lets_a_client_with_a_token_find_and_call_the_api(
    serve: ServerFactory, backend: LocalBackend, tokens: Tokens
) -> None:
    _, port = serve(backend, settings=REFLECTION_ON)
    viewer = tokens.metadata(Role.VIEWER)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as plain:
        channel = with_metadata(plain, viewer)
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {SERVICE_NAME, "grpc.health.v1.Health"} <= services
        # A client that knows nothing but the reflection answers: a pool of its own, dynamic types.
        pool = descriptor_pool.DescriptorPool(database)
        method = pool.FindServiceByName(SERVICE_NAME).FindMethodByName("GetFlexibility")
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            f"/{SERVICE_NAME}/{method.name}",
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        response = call(request_type(region="GB"))
        fields = {f.name for f in response.slots[0].DESCRIPTOR.fields}
        assert {"add_power_kw", "shed_power_kw", "compute_capacity_shards"} <= fields
        assert len(response.slots) == 16
