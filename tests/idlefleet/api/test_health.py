"""Health follows the broker and the solver, and reports a graceful shutdown first."""

from __future__ import annotations

import logging
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from idlefleet.api.health import broker_probe, solver_answers
from idlefleet.api.server import SERVICE_NAME
from idlefleet.queries.local_backend import LocalBackend
from streams.broker import EmbeddedBroker
from tests.idlefleet.conftest import ServerFactory

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_the_solver_probe_solves() -> None:
    assert solver_answers()


def test_serving_only_while_the_broker_answers(serve: ServerFactory, backend: LocalBackend) -> None:
    broker = EmbeddedBroker().start()
    try:
        probes = {"broker": broker_probe(broker.bootstrap_servers, 0.5), "solver": solver_answers}
        _, port = serve(backend, probes=probes, health_interval_s=0.1)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", SERVICE_NAME):
                request = health_pb2.HealthCheckRequest(service=service)
                assert health.Check(request).status == SERVING
            watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=20)
            assert next(watch).status == SERVING
            broker.stop()
            assert next(watch).status == NOT_SERVING
            watch.cancel()
    finally:
        broker.stop()


def test_graceful_shutdown_reports_not_serving_first(
    serve: ServerFactory, backend: LocalBackend
) -> None:
    server, port = serve(backend)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10)
        assert next(watch).status == SERVING
        stopping = threading.Thread(target=server.stop, kwargs={"grace_s": 2.0})
        started = time.monotonic()
        stopping.start()
        assert next(watch).status == NOT_SERVING
        assert time.monotonic() - started < 1.0, "NOT_SERVING only when the grace ran out"
        stopping.join()


def test_degraded_but_serving_stays_serving_and_is_logged_when_it_changes(
    serve: ServerFactory, backend: LocalBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="idlefleet.api.health")
    notes = ["planning on fallback intensity for DE (fallback: DE 2020 ...)"]
    _, port = serve(
        backend, probes={"up": lambda: True}, health_interval_s=0.05, health_notes=lambda: notes
    )
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME)).status == SERVING
        time.sleep(0.3)  # several checks, the same notes: logged once
        degraded = [r.getMessage() for r in caplog.records if "degraded" in r.getMessage()]
        assert degraded == [f"API serving, degraded: {notes[0]}"]
        notes.clear()  # a live signal arrived
        deadline = time.monotonic() + 5
        while "API serving: up reachable" not in caplog.text:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME)).status == SERVING
