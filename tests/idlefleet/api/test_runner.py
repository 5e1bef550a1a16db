"""`idlefleet serve`'s API options, and serving the API beside a service with its probes."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from idlefleet.api.auth import Role
from idlefleet.api.runner import ApiConfigError, add_arguments, api_config, serving_api
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from streams.clients import KafkaSettings
from streams.producer import Publisher
from tests.idlefleet.api.conftest import Pki
from tests.idlefleet.conftest import ReadingPlanner, Tokens


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture
def token_file(tmp_path: Path, tokens: Tokens) -> Path:
    path = tmp_path / "tokens.txt"
    path.write_text(f"{tokens.by_role[Role.VIEWER]} viewer\n")
    return path


def test_without_a_port_there_is_no_api() -> None:
    assert api_config(parse()) is None


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--grpc-port", "0"], "--grpc-port needs --tokens FILE"),
        (["--tokens", "t.txt"], "--tokens and --tls-* need --grpc-port"),
        (["--grpc-port", "0", "--tokens", "{tokens}", "--tls-cert", "c.pem"], "go together"),
        (
            ["--grpc-port", "0", "--tokens", "{tokens}", "--tls-client-ca", "ca.pem"],
            "needs --tls-cert",
        ),
        (["--grpc-port", "0", "--tokens", "missing.txt"], "missing.txt: No such file"),
        (
            ["--grpc-port", "0", "--tokens", "{tokens}", "--tls-cert", "c", "--tls-key", "k"],
            "c: No such file",
        ),
    ],
)
def test_bad_api_options_are_refused_before_anything_starts(
    argv: list[str], problem: str, token_file: Path
) -> None:
    args = parse(*(a.replace("{tokens}", str(token_file)) for a in argv))
    with pytest.raises(ApiConfigError) as error:
        api_config(args)
    assert problem in str(error.value)


def test_plaintext_off_loopback_is_refused_before_anything_starts(token_file: Path) -> None:
    argv = ["--grpc-port", "0", "--tokens", str(token_file), "--grpc-host", "0.0.0.0"]
    with pytest.raises(ApiConfigError) as error:
        api_config(parse(*argv))
    assert "plaintext on 0.0.0.0" in str(error.value)
    assert "--insecure-grpc-off-loopback" in str(error.value)
    waived = api_config(parse(*argv, "--insecure-grpc-off-loopback"))
    assert waived is not None and waived.settings.grpc_insecure_off_loopback


def test_the_api_binds_loopback_without_reflection_by_default(token_file: Path) -> None:
    config = api_config(parse("--grpc-port", "0", "--tokens", str(token_file)))
    assert config is not None and config.host == "127.0.0.1"
    assert not config.settings.grpc_reflection
    argv = ["--grpc-port", "0", "--tokens", str(token_file), "--grpc-reflection"]
    with_reflection = api_config(parse(*argv))
    assert with_reflection is not None and with_reflection.settings.grpc_reflection


def test_serving_the_api_beside_the_service(
    planner: ReadingPlanner,
    kafka_settings: KafkaSettings,
    token_file: Path,
    tokens: Tokens,
    pki: Pki,
    tmp_path: Path,
) -> None:
    (tmp_path / "cert.pem").write_bytes(pki.server_cert)
    (tmp_path / "key.pem").write_bytes(pki.server_key)
    argv = ["--grpc-port", "0", "--grpc-host", "127.0.0.1", "--tokens", str(token_file)]
    argv += ["--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")]
    config = api_config(parse(*argv))
    with serving_api(config, planner, kafka_settings, publisher=Publisher(kafka_settings)) as port:
        assert port
        credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca_cert)
        with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            check = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert check.status == health_pb2.HealthCheckResponse.SERVING  # broker and solver
            stub = pb_grpc.FleetPlannerStub(channel)
            status = stub.GetFleetStatus(
                pb.GetFleetStatusRequest(), metadata=tokens.metadata(Role.VIEWER), timeout=10
            )
            assert status.vehicles_parked == 4
    with serving_api(None, planner, kafka_settings, publisher=Publisher(kafka_settings)) as port:
        assert port is None


def test_the_service_and_the_cli_import_the_api_without_grpc() -> None:
    code = "import sys, idlefleet.api.runner, idlefleet.queries.ports; print('grpc' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
