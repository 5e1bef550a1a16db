"""Secrets never reach a log or a settings repr: private keys of identities, Kafka's SASL and
TLS-key passwords and the API's bearer tokens, with each component exercised and logging at
DEBUG.

The refusals themselves are tested next to their components: tests/streams/test_signing.py
and tests/executor/test_security.py (assignments, models, locations, limits),
tests/idlefleet/api/test_security.py (tokens, roles, request sizes),
tests/streams/test_ingest.py and test_fuzz_decoders.py (malformed and oversize records) and
tests/streams/test_producer.py (a message no reader would take is never sent).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError

from executor.agent import VehicleAgent
from executor.demo_model import build_demo_model
from executor.runtime import OnnxRunner
from idlefleet.api.auth import Role, TokenTable
from idlefleet.api.server import create_server
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.settings import PlannerSettings
from streams.broker import EmbeddedBroker
from streams.clients import KafkaSettings
from streams.errors import MessageError
from streams.identity import Identity
from streams.messages import Assignment, ModelRef, WorkItem
from streams.registry import Registry
from streams.serde import encode, key_of
from streams.signing import Authenticator, RecordSigner
from streams.topics import Stream

CAR = Identity.generate("car-1", "car")
SERVICE = Identity.generate("planner", "service")
SASL_PASSWORD = "sasl-password-4a7b1c9e3d2f5a6b"
SSL_PASSWORD = "ssl-key-password-8e2d6c0a4b1f"
TOKENS = {
    Role.VIEWER: "viewer-token-5c3e1a7f9b2d4e6a",
    Role.OPERATOR: "operator-token-0b9a8c7d6e5f4a3b",
}
BAD_TOKEN = "bad-token-2f4e6a8c0e1d3b5f"
SECRETS = (
    *(
        key.private_bytes_raw().hex()
        for identity in (CAR, SERVICE)
        for key in (identity.signing_key, identity.agreement_key)
    ),
    SASL_PASSWORD,
    SSL_PASSWORD,
    *TOKENS.values(),
    BAD_TOKEN,
)


def assert_no_secret_in(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret in {where}: {text[:300]!r}"


def test_settings_show_their_secrets_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("IDLEFLEET_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("IDLEFLEET_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("IDLEFLEET_KAFKA_SASL_USERNAME", "planner")
    monkeypatch.setenv("IDLEFLEET_KAFKA_SASL_PASSWORD", SASL_PASSWORD)
    monkeypatch.setenv("IDLEFLEET_KAFKA_SSL_PASSWORD", SSL_PASSWORD)
    kafka = KafkaSettings()
    for shown in (
        repr(kafka),
        str(kafka),
        f"{kafka}",
        kafka.model_dump_json(),
        repr(kafka.model_dump()),
    ):
        assert_no_secret_in(shown, "KafkaSettings")
    assert "**********" in repr(kafka)
    # The secrets did arrive, and the client config, which must hold them, does.
    config = kafka.common_config()
    assert (config["sasl_plain_password"], config["ssl_password"]) == (SASL_PASSWORD, SSL_PASSWORD)
    assert repr(CAR).count("Ed25519") == 0  # an identity's repr leaves its keys out


def _kafka_client_tries_sasl(broker: EmbeddedBroker) -> None:
    """A real client built from the settings' config dict, authenticating against the broker
    (which does not offer SASL: the send times out after the handshakes are logged)."""
    settings = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="planner",
        sasl_password=SASL_PASSWORD,
    )
    producer = KafkaProducer(**settings.common_config(), api_version=(3, 9), max_block_ms=1000)
    try:
        with pytest.raises(KafkaError):
            producer.send("idlefleet.telemetry", b"x").get(timeout=3)
    finally:
        producer.close(timeout=1)


def _records_are_signed_and_checked(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(build_demo_model())
    np.save(tmp_path / "in.npy", np.ones((2, 4), np.float32), allow_pickle=False)
    now = datetime.now(UTC)
    item = WorkItem(
        work_id="w-1",
        job_id="j-1",
        shard_index=0,
        model=ModelRef(uri=model.as_uri(), sha256=hashlib.sha256(model.read_bytes()).hexdigest()),
        input_uri=str(tmp_path / "in.npy"),
        output_uri=str(tmp_path / "out"),
    )
    assignment = Assignment(
        assignment_id="a-1",
        plan_id="plan-1",
        vehicle_id="car-1",
        slot_start=now,
        slot_end=now + timedelta(minutes=15),
        charge_power_kw=7.0,
        work=[item],
    )
    registry = Registry(Identity.generate("authority", "service").signing_public_key)
    for identity in (CAR, SERVICE):
        registry.apply(identity.enrollment(now))
    key, value = key_of(Stream.ASSIGNMENTS, assignment), encode(assignment)
    headers = RecordSigner([SERVICE], registry).headers(Stream.ASSIGNMENTS, assignment, key, value)
    car_side = Authenticator(registry, [CAR])
    car_side.verify(Stream.ASSIGNMENTS, key, value, headers)
    with pytest.raises(MessageError):
        car_side.verify(Stream.ASSIGNMENTS, key, value.replace(b"7.0", b"22.0"), headers)
    agent = VehicleAgent(
        "car-1", OnnxRunner(intra_op_threads=1), _Charger(), 0.3, lambda: datetime.now(UTC)
    )
    [ran] = agent.handle(assignment)
    assert ran.status == "done", ran.reason
    assert agent.handle(assignment.model_copy(update={"vehicle_id": "car-2"})) == []  # logged
    result_key, result_value = key_of(Stream.RESULTS, ran), encode(ran)
    proof = RecordSigner([CAR], registry).headers(Stream.RESULTS, ran, result_key, result_value)
    Authenticator(registry, [SERVICE]).verify(Stream.RESULTS, result_key, result_value, proof)


class _Charger:
    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        logging.getLogger("tests.charger").debug("charge at %s kW", power_kw)


def _api_authenticates_tokens() -> None:
    table = TokenTable.parse("\n".join(f"{t} {r.name.lower()}" for r, t in TOKENS.items()))
    backend = LocalBackend([], PlannerSettings(), lambda: datetime.now(UTC))
    server, port = create_server(backend, 0, table, host="127.0.0.1")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.FleetPlannerStub(channel)
            request = pb.GetFleetStatusRequest()
            for token in TOKENS.values():
                stub.GetFleetStatus(request, metadata=(("authorization", f"Bearer {token}"),))
            for token, code in (
                (BAD_TOKEN, grpc.StatusCode.UNAUTHENTICATED),
                (TOKENS[Role.VIEWER], grpc.StatusCode.PERMISSION_DENIED),
            ):
                with pytest.raises(grpc.RpcError) as refused:
                    stub.CancelJob(
                        pb.CancelJobRequest(job_id="j"),
                        metadata=(("authorization", f"Bearer {token}"),),
                    )
                assert refused.value.code() is code
    finally:
        server.stop(grace_s=0)


def test_no_secret_reaches_a_log(
    broker: EmbeddedBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _kafka_client_tries_sasl(broker)
    _records_are_signed_and_checked(tmp_path)
    _api_authenticates_tokens()

    loggers = {record.name.split(".")[0] for record in caplog.records}
    assert {"kafka", "executor", "idlefleet"} <= loggers  # every component did log
    assert any("Sasl" in record.getMessage() for record in caplog.records)
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert_no_secret_in(text, f"a record of {record.name}")
    assert_no_secret_in(caplog.text, "the captured log")
