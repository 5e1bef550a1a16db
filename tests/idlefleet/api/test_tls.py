"""TLS, and mutual TLS with a client CA, on a real channel; plaintext only on loopback unless
waived."""

from __future__ import annotations

import grpc
import pytest

from idlefleet.api.auth import Role
from idlefleet.api.server import InsecureBindError, TlsConfig, create_server, is_loopback
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.settings import ApiSettings
from tests.idlefleet.api.conftest import Pki
from tests.idlefleet.conftest import ServerFactory, Tokens, rpc_error

TIMEOUT_S = 5.0


def _status(channel: grpc.Channel, tokens: Tokens) -> pb.FleetStatus:
    stub = pb_grpc.FleetPlannerStub(channel)
    status: pb.FleetStatus = stub.GetFleetStatus(
        pb.GetFleetStatusRequest(), metadata=tokens.metadata(Role.VIEWER), timeout=TIMEOUT_S
    )
    return status


def _refused(channel: grpc.Channel, tokens: Tokens) -> grpc.StatusCode:
    code: grpc.StatusCode = rpc_error(lambda: _status(channel, tokens)).code()
    return code


def test_tls_serves_clients_that_trust_the_ca(
    serve: ServerFactory, backend: LocalBackend, pki: Pki, tokens: Tokens
) -> None:
    _, port = serve(backend, TlsConfig(pki.server_cert, pki.server_key))
    target = f"localhost:{port}"
    trusted = grpc.ssl_channel_credentials(root_certificates=pki.ca_cert)
    with grpc.secure_channel(target, trusted) as channel:
        assert _status(channel, tokens).vehicles_known == 4
    untrusted = grpc.ssl_channel_credentials(root_certificates=pki.other_ca_cert)
    with grpc.secure_channel(target, untrusted) as channel:
        assert _refused(channel, tokens) is grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(target) as channel:
        assert _refused(channel, tokens) is grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_needs_a_client_certificate_from_the_client_ca(
    serve: ServerFactory, backend: LocalBackend, pki: Pki, tokens: Tokens
) -> None:
    tls = TlsConfig(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    _, port = serve(backend, tls)
    target = f"localhost:{port}"
    with_cert = grpc.ssl_channel_credentials(pki.ca_cert, pki.client_key, pki.client_cert)
    with grpc.secure_channel(target, with_cert) as channel:
        assert _status(channel, tokens).vehicles_known == 4
    without_cert = grpc.ssl_channel_credentials(root_certificates=pki.ca_cert)
    with grpc.secure_channel(target, without_cert) as channel:
        assert _refused(channel, tokens) is grpc.StatusCode.UNAVAILABLE


def test_tls_still_needs_a_token(serve: ServerFactory, backend: LocalBackend, pki: Pki) -> None:
    _, port = serve(backend, TlsConfig(pki.server_cert, pki.server_key))
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca_cert)
    with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
        stub = pb_grpc.FleetPlannerStub(channel)
        error = rpc_error(
            lambda: stub.GetFleetStatus(pb.GetFleetStatusRequest(), timeout=TIMEOUT_S)
        )
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]", "192.0.2.1", "planner.example.org"])
def test_plaintext_off_loopback_is_refused_unless_waived(
    backend: LocalBackend, tokens: Tokens, host: str
) -> None:
    with pytest.raises(InsecureBindError) as error:
        create_server(backend, 0, tokens.table, host=host)
    assert f"plaintext on {host}" in str(error.value)
    assert "--insecure-grpc-off-loopback" in str(error.value)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("localhost", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("[::]", False),
        ("10.0.0.1", False),
        ("localhost.example.org", False),
    ],
)
def test_loopback_is_told_from_other_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _serves_on_all_interfaces(
    backend: LocalBackend,
    tokens: Tokens,
    tls: TlsConfig | None,
    credentials: grpc.ChannelCredentials | None,
    settings: ApiSettings | None = None,
) -> None:
    server, port = create_server(backend, 0, tokens.table, tls, host="0.0.0.0", settings=settings)
    server.start()
    try:
        target = f"localhost:{port}"
        with (
            grpc.insecure_channel(target)
            if credentials is None
            else grpc.secure_channel(target, credentials)
        ) as channel:
            assert _status(channel, tokens).vehicles_known == 4
    finally:
        server.stop(grace_s=0)


def test_tls_or_the_waiver_serve_off_loopback(
    backend: LocalBackend, tokens: Tokens, pki: Pki
) -> None:
    trusted = grpc.ssl_channel_credentials(root_certificates=pki.ca_cert)
    _serves_on_all_interfaces(backend, tokens, TlsConfig(pki.server_cert, pki.server_key), trusted)
    waived = ApiSettings(grpc_insecure_off_loopback=True)
    _serves_on_all_interfaces(backend, tokens, None, None, waived)
