"""Bounded calls: streams held open by one client cannot starve health checks; a call beyond
the bounds ends RESOURCE_EXHAUSTED at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from idlefleet.api.auth import Role
from idlefleet.api.server import SERVICE_NAME
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.settings import ApiSettings
from tests.idlefleet.conftest import ServerFactory, Tokens

STREAMS = 32
HEALTH_TIMEOUT_S = 0.1
SETTINGS = ApiSettings(grpc_reflection=True)


def _held_open(release: threading.Event) -> Iterator[reflection_pb2.ServerReflectionRequest]:
    """One request, then a stream that stays open until `release`."""
    yield reflection_pb2.ServerReflectionRequest(list_services="")
    release.wait()


def _open_streams(
    open_one: Callable[[], grpc.Call],
) -> tuple[list[grpc.Call], list[grpc.StatusCode]]:
    """STREAMS calls, each read to its first answer: the open ones and the refusals' codes."""
    opened: list[grpc.Call] = []
    refused: list[grpc.StatusCode] = []
    for _ in range(STREAMS):
        call = open_one()
        try:
            next(call)  # type: ignore[call-overload]
            opened.append(call)
        except grpc.RpcError as error:
            refused.append(error.code())
    return opened, refused


def _health_answers_in_time(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    started = time.monotonic()
    response = health.Check(
        health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=HEALTH_TIMEOUT_S
    )
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    assert time.monotonic() - started < HEALTH_TIMEOUT_S


def test_open_reflection_streams_leave_health_answering(
    serve: ServerFactory, backend: LocalBackend, tokens: Tokens
) -> None:
    _, port = serve(backend, settings=SETTINGS)
    release = threading.Event()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        viewer = tokens.metadata(Role.VIEWER)
        opened, refused = _open_streams(
            lambda: stub.ServerReflectionInfo(_held_open(release), metadata=viewer)
        )
        try:
            assert len(opened) == SETTINGS.grpc_max_streams
            assert set(refused) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
            _health_answers_in_time(channel)
        finally:
            release.set()
            for call in opened:
                call.cancel()


def test_open_health_watches_leave_health_checks_answering(
    serve: ServerFactory, backend: LocalBackend
) -> None:
    _, port = serve(backend)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        opened, refused = _open_streams(lambda: health.Watch(request))
        try:
            assert len(opened) == ApiSettings().grpc_max_streams
            assert set(refused) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
            _health_answers_in_time(channel)
        finally:
            for call in opened:
                call.cancel()


def test_a_closed_stream_gives_its_place_back(serve: ServerFactory, backend: LocalBackend) -> None:
    _, port = serve(backend, settings=ApiSettings(grpc_max_workers=4, grpc_max_streams=1))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        first = health.Watch(request)
        next(first)
        first.cancel()
        deadline = time.monotonic() + 5.0
        while True:  # the server sees the cancellation a moment later
            try:
                next(health.Watch(request, timeout=1.0))
                break
            except grpc.RpcError as error:
                assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert time.monotonic() < deadline, "the cancelled watch kept its place"
                time.sleep(0.05)
